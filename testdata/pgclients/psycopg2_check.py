# psycopg2 against the gateway's PostgreSQL door: a query with parameters
# (psycopg2 quotes them client-side) and a server-side cursor (DECLARE and
# FETCH in a transaction), printed one fact per line for postgres_test.go.
import sys

import psycopg2

user = sys.argv[5] if len(sys.argv) > 5 else "tester"
conn = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), dbname=sys.argv[3], user=user, password=sys.argv[4])
cur = conn.cursor()
cur.execute("SELECT transaction_id, amount, payment_date FROM std.spend_over_500 WHERE council = %s AND amount > %s ORDER BY transaction_id LIMIT 3", ("edinburgh", 1000))
for tid, amount, day in cur.fetchall():
    print("param", tid, amount, day.isoformat())
named = conn.cursor(name="all_spend")
named.itersize = 250
named.execute("SELECT council, transaction_id FROM std.spend_over_500 ORDER BY council, transaction_id")
rows = list(named)
print("cursor", len(rows), rows[0][0], rows[-1][0])
named.close()
conn.commit()
try:
    cur.execute("SHOW gateway.purpose")  # the gateway's; a plain PostgreSQL has none
    print("purpose", cur.fetchone()[0])
except psycopg2.Error:
    conn.rollback()
conn.close()
