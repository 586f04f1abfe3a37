-- Classifies every request row of the selected apps in the window's partitions.
-- A NULL `reason` means the row honours the contract; otherwise `reason` is the first rule it breaks.
-- Inputs: `requests_scoped` (raw rows), `duplicate_request_ids` (ids that occur more than once).
-- Parameters: $window_start, $window_end, $max_prompt_tokens, $max_completion_tokens.
WITH classified AS (
  SELECT *,
    CASE
      WHEN request_id IS NULL THEN 'null_request_id'
      WHEN ts IS NULL THEN 'null_ts'
      WHEN app_id IS NULL THEN 'null_app_id'
      WHEN supply_id IS NULL THEN 'null_supply_id'
      WHEN prompt_tokens IS NULL THEN 'null_prompt_tokens'
      WHEN completion_tokens IS NULL THEN 'null_completion_tokens'
      WHEN prompt_tokens < 0 OR completion_tokens < 0 OR cached_tokens < 0 THEN 'negative_tokens'
      WHEN prompt_tokens > $max_prompt_tokens OR completion_tokens > $max_completion_tokens
        THEN 'tokens_above_ceiling'
      WHEN ts >= $window_end THEN 'ts_after_as_of'
      WHEN ts < $window_start THEN 'ts_before_window'
      WHEN status IS NOT NULL AND status NOT IN ('ok', 'error', 'timeout', 'cancelled')
        THEN 'unknown_status'
    END AS reason
  FROM requests_scoped
)
SELECT * FROM classified
WHERE reason IS NOT NULL
   OR request_id NOT IN (SELECT request_id FROM duplicate_request_ids)
UNION ALL
-- Of several otherwise valid rows sharing a request_id, the earliest is kept.
SELECT * EXCLUDE (copy),
  CASE WHEN copy > 1 THEN 'duplicate_request_id' END AS reason
FROM (
  SELECT * EXCLUDE (reason),
    ROW_NUMBER() OVER (
      PARTITION BY request_id
      ORDER BY ts, supply_id, prompt_tokens, completion_tokens, e2e_ms
    ) AS copy
  FROM classified
  WHERE reason IS NULL
    AND request_id IN (SELECT request_id FROM duplicate_request_ids)
)
