-- Telemetry per (supply_id, hour) over the valid gpu_metrics windows, all instances together.
-- Parameters: $window_start, $window_end.
SELECT
  supply_id,
  date_trunc('hour', ts) AS hour,
  COUNT(*) AS windows,
  COUNT(DISTINCT instance_id) AS instances,
  AVG(num_running) AS num_running_mean,
  MAX(num_running) AS num_running_max,
  AVG(num_waiting) AS num_waiting_mean,
  MAX(num_waiting) AS num_waiting_max,
  AVG(kv_cache_usage) AS kv_cache_usage_mean,
  MAX(kv_cache_usage) AS kv_cache_usage_max,
  AVG(gpu_util) AS gpu_util_mean,
  MAX(gpu_util) AS gpu_util_max
FROM gpu_metrics
WHERE ts >= $window_start AND ts < $window_end
GROUP BY supply_id, date_trunc('hour', ts)
ORDER BY supply_id, hour
