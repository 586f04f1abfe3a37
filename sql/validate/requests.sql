-- Checks every request row of the selected apps in the window's partitions against the contract.
-- A NULL `reason` means the row passes the row-wise rules; otherwise `reason` is the first rule it
-- breaks. Duplicate request ids are handled after this query: of several rows sharing an id that
-- pass these rules, the earliest is kept and the others get `duplicate_request_id`.
-- Input: `requests_scoped` (raw rows).
-- Parameters: $window_start, $window_end, $max_prompt_tokens, $max_completion_tokens.
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
