-- Every council answers the standard spend dataset; totals are exact decimals.
SELECT council, council_gss, count(*) AS payments, sum(amount) AS total, min(payment_date) AS first, max(payment_date) AS last
FROM std.spend_over_500 GROUP BY ALL ORDER BY council
