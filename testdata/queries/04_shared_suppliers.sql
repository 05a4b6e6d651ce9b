-- A cross-council join: suppliers paid by three or more councils.
WITH paid AS (SELECT DISTINCT council, beneficiary_name FROM std.spend_over_500 WHERE beneficiary_name IS NOT NULL)
SELECT beneficiary_name, count(*) AS councils, string_agg(council, ',' ORDER BY council) AS who
FROM paid GROUP BY beneficiary_name HAVING count(*) >= 3 ORDER BY councils DESC, beneficiary_name LIMIT 10
