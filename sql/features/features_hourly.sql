-- Request features per (app_id, supply_id, hour) over the valid requests of the window.
-- Parameters: $window_start, $window_end. TPOT = (E2E − TTFT) / (completion tokens − 1).
-- Percentiles are t-digest estimates (bounded memory at any volume; exact for small groups).
SELECT
  app_id,
  supply_id,
  date_trunc('hour', ts) AS hour,
  COUNT(*) AS requests,
  COUNT(*) / 3600.0 AS requests_per_s,
  AVG(prompt_tokens) AS prompt_tokens_mean,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY prompt_tokens) AS prompt_tokens_p50,
  approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY prompt_tokens) AS prompt_tokens_p95,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY prompt_tokens) AS prompt_tokens_p99,
  MAX(prompt_tokens) AS prompt_tokens_max,
  AVG(completion_tokens) AS completion_tokens_mean,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY completion_tokens) AS completion_tokens_p50,
  approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY completion_tokens) AS completion_tokens_p95,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY completion_tokens) AS completion_tokens_p99,
  MAX(completion_tokens) AS completion_tokens_max,
  CAST(SUM(cached_tokens) AS DOUBLE) / NULLIF(SUM(prompt_tokens), 0) AS cached_token_share,
  -- Requests whose prompt was already seen in the same hour, over requests that carry a hash
  -- (distinct-counted on a 64-bit hash of the id: integers take a fraction of the memory of strings).
  (COUNT(prompt_hash) - COUNT(DISTINCT hash64(prompt_hash)))
    / CAST(NULLIF(COUNT(prompt_hash), 0) AS DOUBLE) AS duplicate_prompt_share,
  AVG(CASE WHEN status = 'error' THEN 1.0 WHEN status IS NULL THEN NULL ELSE 0.0 END) AS error_rate,
  AVG(CASE WHEN status = 'timeout' THEN 1.0 WHEN status IS NULL THEN NULL ELSE 0.0 END) AS timeout_rate,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_ms_p50,
  approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_ms_p95,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_ms_p99,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY tpot_ms) AS tpot_ms_p50,
  approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY tpot_ms) AS tpot_ms_p95,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY tpot_ms) AS tpot_ms_p99,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY e2e_ms) AS e2e_ms_p50,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY e2e_ms) AS e2e_ms_p95,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY e2e_ms) AS e2e_ms_p99,
  SUM(cost_usd) AS cost_usd
FROM (
  SELECT *,
    CASE WHEN completion_tokens > 1 THEN (e2e_ms - ttft_ms) / (completion_tokens - 1) END AS tpot_ms
  FROM requests
  WHERE ts >= $window_start AND ts < $window_end
)
GROUP BY app_id, supply_id, date_trunc('hour', ts)
ORDER BY app_id, supply_id, hour
