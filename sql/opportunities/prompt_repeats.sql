-- What a response cache in front of each app would see: every request of the window with a
-- prompt hash, per app in arrival order (ties by a 64-bit hash of request_id: sorting integers,
-- not strings, is what keeps this query cheap at ten million rows). The prompt is its 64-bit hash.
-- A response can be cached only from a request that succeeded (`ok`); any later request with the
-- same hash could be answered from it. Parameters: $window_start, $window_end.
SELECT
  app_id, supply_id, ts, hash64(prompt_hash) AS prompt, status = 'ok' AS cacheable,
  prompt_tokens, completion_tokens, cost_usd
FROM requests
WHERE ts >= $window_start AND ts < $window_end AND prompt_hash IS NOT NULL
ORDER BY app_id, ts, hash64(request_id)
