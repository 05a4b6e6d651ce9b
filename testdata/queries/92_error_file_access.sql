-- The analyst's SQL cannot read files.
SELECT * FROM read_parquet('deploy/demo/data/stirling/payments/*.parquet')
