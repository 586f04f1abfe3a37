-- Per-request inputs of workload characterization, streamed in arrival order (ties by request_id)
-- so the "prefix seen earlier in the window" state is the same on every pass and for any thread count.
-- turn: rank of the request within its session by time; depth: the session's number of requests.
-- Requests without a session_id are single-turn sessions (turn 1, depth 1).
-- Parameters: $window_start, $window_end.
SELECT
  request_id, ts, app_id, supply_id, session_id, prompt_tokens, completion_tokens, cached_tokens,
  prefix_hash, prefix_tokens, prefix_block_hashes, prefix_block_tokens,
  CASE WHEN session_id IS NULL THEN 1
       ELSE ROW_NUMBER() OVER (PARTITION BY app_id, session_id ORDER BY ts, request_id) END AS turn,
  CASE WHEN session_id IS NULL THEN 1
       ELSE COUNT(*) OVER (PARTITION BY app_id, session_id) END AS depth
FROM requests
WHERE ts >= $window_start AND ts < $window_end
ORDER BY ts, request_id
