-- Per-request inputs of workload characterization, streamed in arrival order (ties by request_id)
-- so per-class inter-arrival times are well defined and every pass sees the same order.
-- depth: the number of requests of the request's session; 1 without a session_id.
-- Parameters: $window_start, $window_end.
SELECT
  request_id, ts, app_id, supply_id, session_id, prompt_tokens, completion_tokens, cached_tokens,
  prefix_hash, prefix_tokens, prefix_block_hashes, prefix_block_tokens,
  CASE WHEN session_id IS NULL THEN 1
       ELSE CAST(COUNT(*) OVER (PARTITION BY app_id, session_id) AS BIGINT) END AS depth
FROM requests
WHERE ts >= $window_start AND ts < $window_end
ORDER BY ts, request_id
