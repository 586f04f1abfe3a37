-- The shape of one supply's valid requests: mean prompt and output tokens (the context length the
-- roofline prior assumes), how many there are and the first arrival (epoch seconds), from which the
-- backtest's hours are counted. Parameters: $supply_id.
SELECT
  CAST(AVG(prompt_tokens) AS DOUBLE) AS prompt_tokens_mean,
  CAST(AVG(completion_tokens) AS DOUBLE) AS completion_tokens_mean,
  CAST(COUNT(*) AS DOUBLE) AS requests,
  CAST(MIN(date_part('epoch', ts)) AS DOUBLE) AS first_s
FROM requests
WHERE supply_id = $supply_id
