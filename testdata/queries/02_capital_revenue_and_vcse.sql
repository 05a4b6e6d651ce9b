-- Value maps (Revenue -> R) and Y/N, Yes/No, true/false booleans land on one vocabulary.
SELECT capital_revenue, vcse_grant, count(*) AS n
FROM std.spend_over_500 GROUP BY ALL ORDER BY ALL
