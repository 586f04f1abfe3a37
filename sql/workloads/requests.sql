-- Per-request inputs of workload characterization, in arrival order (ties by request_id) so per-class
-- inter-arrival times and the search's traces are well defined.
-- depth: the number of requests of the window in the request's session; 1 without a session_id.
-- It is joined from a per-session count (the session table is the join's small build side), not a
-- window function, which would sort every column of the window by session.
-- Parameters: $window_start, $window_end.
WITH in_window AS (
  SELECT
    request_id, ts, app_id, supply_id, session_id, prompt_tokens, completion_tokens, cached_tokens,
    prefix_hash, prefix_tokens, prefix_block_hashes, prefix_block_tokens
  FROM requests
  WHERE ts >= $window_start AND ts < $window_end
),
sessions AS (
  SELECT app_id, session_id, COUNT(*) AS depth
  FROM in_window
  WHERE session_id IS NOT NULL
  GROUP BY app_id, session_id
)
SELECT
  r.request_id, r.ts, r.app_id, r.supply_id, r.session_id, r.prompt_tokens, r.completion_tokens,
  r.cached_tokens, r.prefix_hash, r.prefix_tokens, r.prefix_block_hashes, r.prefix_block_tokens,
  COALESCE(s.depth, 1) AS depth
FROM sessions s
RIGHT JOIN in_window r ON s.app_id = r.app_id AND s.session_id = r.session_id
ORDER BY r.ts, r.request_id
