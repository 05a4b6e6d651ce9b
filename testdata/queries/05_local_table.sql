-- A council's own table, with its own column names, filtered and limited at the store.
SELECT "Transaction number", "Date paid", "Net amount"
FROM edinburgh.payments_over_500 WHERE "Capital or revenue" = 'C' ORDER BY "Transaction number" LIMIT 5
