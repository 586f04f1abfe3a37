-- Per supply and hour: what the grades and alerts read. From `requests`: volume, failures (errors,
-- timeouts), tokens, cost; over the requests that did not fail and have a TTFT: p95 TTFT and TPOT,
-- and how many missed each of the supply's SLO targets and how many met both (table `supplies`,
-- registered by the run from its pipeline file); from `gpu_metrics`: queueing, KV-cache pressure,
-- preemptions and GPU utilisation. Hours with only one side have nulls on the other.
-- TPOT = (E2E − TTFT) / (completion tokens − 1). Parameters: $window_start, $window_end.
WITH r AS (
  SELECT
    q.supply_id,
    date_trunc('hour', q.ts) AS hour,
    COUNT(*) AS requests,
    CAST(SUM(CASE WHEN q.status = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
    CAST(SUM(CASE WHEN q.status = 'timeout' THEN 1 ELSE 0 END) AS BIGINT) AS timeouts,
    CAST(SUM(q.prompt_tokens + q.completion_tokens) AS BIGINT) AS tokens,
    SUM(q.cost_usd) AS cost_usd,
    COUNT(q.ok_ttft_ms) AS with_latency,
    CAST(SUM(CASE WHEN q.ok_ttft_ms > s.p95_ttft_ms THEN 1 ELSE 0 END) AS BIGINT) AS ttft_misses,
    CAST(SUM(CASE WHEN q.ok_ttft_ms IS NOT NULL AND q.tpot_ms > s.p95_tpot_ms THEN 1 ELSE 0 END)
      AS BIGINT) AS tpot_misses,
    CAST(SUM(CASE WHEN q.ok_ttft_ms <= s.p95_ttft_ms AND COALESCE(q.tpot_ms, 0) <= s.p95_tpot_ms
      THEN 1 ELSE 0 END) AS BIGINT) AS met_slo,
    approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY q.ok_ttft_ms) AS ttft_ms_p95,
    approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY q.tpot_ms) AS tpot_ms_p95
  FROM (
    SELECT supply_id, ts, status, prompt_tokens, completion_tokens, cost_usd,
      CASE WHEN status IS NULL OR status NOT IN ('error', 'timeout') THEN ttft_ms END AS ok_ttft_ms,
      CASE WHEN completion_tokens > 1 AND (status IS NULL OR status NOT IN ('error', 'timeout'))
        THEN (e2e_ms - ttft_ms) / (completion_tokens - 1) END AS tpot_ms
    FROM requests
    WHERE ts >= $window_start AND ts < $window_end
  ) q
  JOIN supplies s ON q.supply_id = s.supply_id
  GROUP BY q.supply_id, date_trunc('hour', q.ts)
),
g AS (
  SELECT
    supply_id,
    date_trunc('hour', ts) AS hour,
    AVG(num_waiting) AS num_waiting_mean,
    MAX(kv_cache_usage) AS kv_cache_usage_max,
    SUM(preemptions) AS preemptions,
    AVG(gpu_util) AS gpu_util_mean
  FROM gpu_metrics
  WHERE ts >= $window_start AND ts < $window_end
    AND supply_id IN (SELECT supply_id FROM supplies)
  GROUP BY supply_id, date_trunc('hour', ts)
)
SELECT
  COALESCE(r.supply_id, g.supply_id) AS supply_id,
  COALESCE(r.hour, g.hour) AS hour,
  COALESCE(r.requests, 0) AS requests,
  COALESCE(r.errors, 0) AS errors,
  COALESCE(r.timeouts, 0) AS timeouts,
  COALESCE(r.tokens, 0) AS tokens,
  r.cost_usd,
  COALESCE(r.with_latency, 0) AS with_latency,
  COALESCE(r.ttft_misses, 0) AS ttft_misses,
  COALESCE(r.tpot_misses, 0) AS tpot_misses,
  COALESCE(r.met_slo, 0) AS met_slo,
  r.ttft_ms_p95,
  r.tpot_ms_p95,
  g.num_waiting_mean,
  g.kv_cache_usage_max,
  g.preemptions,
  g.gpu_util_mean
FROM r
FULL OUTER JOIN g ON r.supply_id = g.supply_id AND r.hour = g.hour
ORDER BY supply_id, hour
