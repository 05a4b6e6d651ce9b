-- Negative amounts (credit notes) survive every local amount format.
SELECT council, count(*) AS credit_notes, sum(amount) AS credited
FROM std.spend_over_500 WHERE amount < 0 GROUP BY council ORDER BY council
