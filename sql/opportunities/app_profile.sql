-- Per app and supply: how latency-tolerant the traffic looks and what it was billed, for the batch
-- finding. `night` counts requests between 22:00 and 06:00 UTC; `in_sessions` those with a
-- session id (a person waiting on a conversation); `prompt_p50` is exact (it meets a threshold);
-- `cost_usd` sums the logged cost where present.
-- Parameters: $window_start, $window_end.
SELECT
  app_id,
  supply_id,
  COUNT(*) AS requests,
  COUNT(session_id) AS in_sessions,
  CAST(SUM(CASE WHEN date_part('hour', ts) >= 22 OR date_part('hour', ts) < 6 THEN 1 ELSE 0 END)
    AS BIGINT) AS night,
  median(CAST(prompt_tokens AS DOUBLE)) AS prompt_p50,
  CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens,
  CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens,
  COUNT(cost_usd) AS with_cost,
  COALESCE(SUM(cost_usd), 0.0) AS cost_usd
FROM requests
WHERE ts >= $window_start AND ts < $window_end
GROUP BY app_id, supply_id
ORDER BY app_id, supply_id
