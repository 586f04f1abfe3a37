-- Per app, its successful completions against the cap its clients set: the inputs of the
-- client-defaults finding. `truncated` counts completions that hit `max_tokens`
-- (finish_reason = 'length'); `supply_id` is the supply that served most of the app's requests.
-- Parameters: $window_start, $window_end.
WITH ok AS (
  SELECT app_id, supply_id, completion_tokens, max_tokens, finish_reason, feedback
  FROM requests
  WHERE ts >= $window_start AND ts < $window_end
    AND status = 'ok' AND completion_tokens IS NOT NULL
),
supplies AS (
  SELECT app_id, supply_id,
    ROW_NUMBER() OVER (PARTITION BY app_id ORDER BY COUNT(*) DESC, supply_id) AS rank
  FROM ok
  GROUP BY app_id, supply_id
)
SELECT
  o.app_id,
  s.supply_id,
  COUNT(*) AS requests,
  CAST(SUM(CASE WHEN o.finish_reason = 'length' THEN 1 ELSE 0 END) AS BIGINT) AS truncated,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(o.completion_tokens AS DOUBLE)) AS completion_p50,
  approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY CAST(o.completion_tokens AS DOUBLE)) AS completion_p90,
  CAST(MAX(o.completion_tokens) AS DOUBLE) AS completion_max,
  COUNT(o.max_tokens) AS with_max_tokens,
  approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(o.max_tokens AS DOUBLE)) AS max_tokens_p50,
  COUNT(o.feedback) AS with_feedback
FROM ok o
JOIN supplies s ON o.app_id = s.app_id AND s.rank = 1
GROUP BY o.app_id, s.supply_id
ORDER BY o.app_id
