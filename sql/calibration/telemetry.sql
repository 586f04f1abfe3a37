-- One supply's valid telemetry windows in time order (ties by instance), what the decode fit and the
-- EKF read. Parameters: $supply_id.
SELECT *
FROM gpu_metrics
WHERE supply_id = $supply_id
ORDER BY ts, instance_id
