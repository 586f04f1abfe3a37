-- Session depth per app: how many requests (turns) each session has, as a distribution.
-- Requests without a session_id count as single-request sessions; they join the histogram as one
-- weighted row per app rather than one group per request, which keeps this query cheap at any
-- volume. Percentiles are exact nearest-rank values over the (small) depth histogram.
-- Parameters: $window_start, $window_end.
WITH in_window AS (
  SELECT app_id, session_id FROM requests WHERE ts >= $window_start AND ts < $window_end
),
histogram AS (
  SELECT app_id, depth, SUM(sessions) AS sessions
  FROM (
    SELECT app_id, depth, COUNT(*) AS sessions
    FROM (
      SELECT app_id, COUNT(*) AS depth FROM in_window WHERE session_id IS NOT NULL
      GROUP BY app_id, session_id
    )
    GROUP BY app_id, depth
    UNION ALL
    SELECT app_id, 1 AS depth, COUNT(*) AS sessions
    FROM in_window WHERE session_id IS NULL
    GROUP BY app_id
  )
  GROUP BY app_id, depth
),
cumulative AS (
  SELECT app_id, depth, sessions,
    CAST(SUM(sessions) OVER (PARTITION BY app_id ORDER BY depth) AS DOUBLE)
      / SUM(sessions) OVER (PARTITION BY app_id) AS share_up_to
  FROM histogram
)
SELECT
  app_id,
  SUM(sessions) AS sessions,
  CAST(SUM(depth * sessions) AS DOUBLE) / SUM(sessions) AS depth_mean,
  MIN(CASE WHEN share_up_to >= 0.5 THEN depth END) AS depth_p50,
  MIN(CASE WHEN share_up_to >= 0.9 THEN depth END) AS depth_p90,
  MIN(CASE WHEN share_up_to >= 0.99 THEN depth END) AS depth_p99,
  MAX(depth) AS depth_max,
  CAST(SUM(CASE WHEN depth = 1 THEN sessions ELSE 0 END) AS DOUBLE) / SUM(sessions)
    AS single_turn_share
FROM cumulative
GROUP BY app_id
ORDER BY app_id
