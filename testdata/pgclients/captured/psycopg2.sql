BEGIN
-- next
SELECT transaction_id, amount, payment_date FROM std.spend_over_500 WHERE council = 'edinburgh' AND amount > 1000 ORDER BY transaction_id LIMIT 3
-- next
DECLARE "all_spend" CURSOR WITHOUT HOLD FOR SELECT council, transaction_id FROM std.spend_over_500 ORDER BY council, transaction_id
-- next
FETCH FORWARD 250 FROM "all_spend"
-- next
FETCH FORWARD 250 FROM "all_spend"
-- next
CLOSE "all_spend"
-- next
COMMIT
-- next
BEGIN
-- next
SHOW gateway.purpose
-- next
ROLLBACK
