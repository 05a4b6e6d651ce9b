-- Filtering on council_gss reads one council only.
SELECT council, count(*) AS n, sum(irrecoverable_vat) AS vat FROM std.spend_over_500 WHERE council_gss = 'S12000047' GROUP BY council
