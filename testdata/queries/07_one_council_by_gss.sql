-- Filtering on council_gss reads one council only. Fife publishes Gross,
-- VAT and Net: its VAT is recoverable, so it is in gross_amount, never in
-- irrecoverable_vat (NULL for Fife).
SELECT council, count(*) AS n, sum(gross_amount - amount) AS vat, sum(irrecoverable_vat) AS irrecoverable FROM std.spend_over_500 WHERE council_gss = 'S12000047' GROUP BY council
