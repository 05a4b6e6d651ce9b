-- Every council's payments by UK financial year and how precisely each
-- council dates them (standard dataset version 2's derived columns).
SELECT council, financial_year, date_precision, count(*) AS payments, min(period_start) AS first, max(period_end) AS last FROM std.spend_over_500 GROUP BY ALL ORDER BY ALL
