-- What a hosted API's automatic prompt cache would see: every request to a hosted supply (table
-- `supplies`, registered by the run from its pipeline file) in arrival order, with its shared
-- prefix (`prefix_hash`, `prefix_tokens`, at most the prompt) and the cached tokens the provider
-- already reported. Parameters: $window_start, $window_end.
SELECT
  r.supply_id, r.app_id, r.ts, r.prefix_hash,
  LEAST(COALESCE(r.prefix_tokens, 0), r.prompt_tokens) AS prefix_tokens,
  r.prompt_tokens,
  r.completion_tokens,
  COALESCE(r.cached_tokens, 0) AS cached_tokens
FROM requests r
JOIN supplies s ON r.supply_id = s.supply_id AND s.hosted
WHERE r.ts >= $window_start AND r.ts < $window_end
ORDER BY r.supply_id, r.ts, r.request_id
