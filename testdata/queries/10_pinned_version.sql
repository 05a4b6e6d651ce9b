-- A saved query pinned to version 1 sees version 1's eleven columns (plus
-- council and council_gss), whatever columns later versions add.
SELECT * FROM std.spend_over_500_v1 WHERE council = 'highland' ORDER BY transaction_id LIMIT 3
