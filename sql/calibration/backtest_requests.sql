-- The requests one supply's backtest replays: whole hours counted from its first request
-- ($first_s, epoch seconds), one hour in $stride, so the load inside each replayed hour is the real
-- one. In arrival order (ties by request id). Parameters: $supply_id, $first_s, $stride.
SELECT *
FROM requests
WHERE supply_id = $supply_id
  AND CAST(floor((date_part('epoch', ts) - $first_s) / 3600) AS BIGINT) % $stride = 0
ORDER BY ts, request_id
