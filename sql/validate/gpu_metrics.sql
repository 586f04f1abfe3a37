-- Classifies every gpu_metrics row of the window's partitions (NULL `reason` = valid).
-- Input: `gpu_metrics_scoped`. Parameters: $window_start, $window_end.
SELECT *,
  CASE
    WHEN ts IS NULL THEN 'null_ts'
    WHEN supply_id IS NULL THEN 'null_supply_id'
    WHEN instance_id IS NULL THEN 'null_instance_id'
    WHEN num_running IS NULL THEN 'null_num_running'
    WHEN num_running < 0 OR num_waiting < 0 OR preemptions < 0 THEN 'negative_gauge'
    WHEN kv_cache_usage < 0 OR kv_cache_usage > 1 OR gpu_util < 0 OR gpu_util > 1
      THEN 'fraction_out_of_range'
    WHEN ts >= $window_end THEN 'ts_after_as_of'
    WHEN ts < $window_start THEN 'ts_before_window'
  END AS reason
FROM gpu_metrics_scoped
