-- Prefill samples of one supply: per successful request with a measured TTFT, the prompt tokens not
-- served from cache and the TTFT without queueing, the time the engine spent before the first token.
-- In arrival order (request ids are unique after ingest), so the fit sums in a fixed order.
-- Parameters: $supply_id.
SELECT
  CAST(prompt_tokens - COALESCE(cached_tokens, 0) AS DOUBLE) AS uncached_tokens,
  ttft_ms - COALESCE(queue_ms, 0.0) AS service_ms
FROM requests
WHERE supply_id = $supply_id AND (status IS NULL OR status = 'ok') AND ttft_ms IS NOT NULL
ORDER BY ts, request_id
