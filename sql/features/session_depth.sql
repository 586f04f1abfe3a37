-- Session depth per app: how many requests (turns) each session has, as a distribution.
-- Requests without a session_id are counted as single-request sessions of their own.
-- Parameters: $window_start, $window_end.
WITH sessions AS (
  SELECT app_id, COALESCE(session_id, 'request:' || request_id) AS session, COUNT(*) AS depth
  FROM requests
  WHERE ts >= $window_start AND ts < $window_end
  GROUP BY app_id, COALESCE(session_id, 'request:' || request_id)
)
SELECT
  app_id,
  COUNT(*) AS sessions,
  AVG(depth) AS depth_mean,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY depth) AS depth_p50,
  approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY depth) AS depth_p90,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY depth) AS depth_p99,
  MAX(depth) AS depth_max,
  AVG(CASE WHEN depth = 1 THEN 1.0 ELSE 0.0 END) AS single_turn_share
FROM sessions
GROUP BY app_id
ORDER BY app_id
