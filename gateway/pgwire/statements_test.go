package pgwire

import (
	"errors"
	"maps"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		sql   string
		kind  kind
		name  string
		value string
		query string
		state string // the refusal's SQLSTATE
	}{
		{sql: "SELECT 1", kind: kQuery, query: "SELECT 1"},
		{sql: "with x as (select 1) select * from x", kind: kQuery},
		{sql: "SET gateway.purpose = 'research'", kind: kSet, name: "gateway.purpose", value: "research"},
		{sql: "SET gateway.purpose TO research", kind: kSet, name: "gateway.purpose", value: "research"},
		{sql: `SET "DateStyle" = 'ISO'`, kind: kSet, name: "datestyle", value: "ISO"},
		{sql: "SET SESSION extra_float_digits = 3", kind: kSet, name: "extra_float_digits", value: "3"},
		{sql: "SET TIME ZONE 'UTC'", kind: kSet, name: "timezone", value: "UTC"},
		{sql: "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", kind: kNoop},
		{sql: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", kind: kNoop},
		{sql: "SET SESSION AUTHORIZATION bob", state: stateInsufficientPriv},
		{sql: "show transaction_isolation", kind: kShow, name: "transaction_isolation"},
		{sql: "SHOW gateway.purpose", kind: kShow, name: "gateway.purpose"},
		{sql: "BEGIN", kind: kBegin},
		{sql: "start transaction read only", kind: kBegin},
		{sql: "COMMIT", kind: kCommit},
		{sql: "ROLLBACK", kind: kRollback},
		{sql: "ROLLBACK TO SAVEPOINT a", state: stateNotSupported},
		{sql: `DECLARE "big" CURSOR WITHOUT HOLD FOR SELECT council FROM std.spend_over_500`, kind: kDeclare, name: "big", query: "SELECT council FROM std.spend_over_500"},
		{sql: "DECLARE c BINARY CURSOR FOR SELECT 1", state: stateNotSupported},
		{sql: "DECLARE c CURSOR FOR DELETE FROM t", state: stateReadOnly},
		{sql: `FETCH FORWARD 2000 FROM "big"`, kind: kFetch, name: "big"},
		{sql: "FETCH ALL IN c", kind: kFetch, name: "c"},
		{sql: "FETCH BACKWARD 1 FROM c", state: stateNotSupported},
		{sql: "CLOSE c", kind: kCloseCur, name: "c"},
		{sql: `DEALLOCATE "_PLAN0x1"`, kind: kDeallocate, name: "_PLAN0x1"},
		{sql: "COPY ( SELECT 1 ) TO STDOUT", kind: kCopy, query: "SELECT 1"},
		{sql: "COPY std.spend_over_500 TO STDOUT WITH CSV HEADER", kind: kCopy, query: "SELECT * FROM std.spend_over_500"},
		{sql: "COPY t FROM STDIN", state: stateReadOnly},
		{sql: "COPY (SELECT 1) TO '/etc/x'", state: stateInsufficientPriv},
		{sql: "COPY (DELETE FROM t RETURNING *) TO STDOUT", state: stateReadOnly},
		{sql: "INSERT INTO t VALUES (1)", state: stateReadOnly},
		{sql: "create table t (a int)", state: stateReadOnly},
		{sql: "ATTACH 'x.db'", state: stateNotSupported},
		{sql: "PREPARE p AS SELECT 1", state: stateNotSupported},
		{sql: "LISTEN x", state: stateNotSupported},
		{sql: "FROBNICATE", state: stateSyntax},
		{sql: "SELECT 'open", state: stateSyntax},
	} {
		st, err := classify(c.sql)
		if c.state != "" {
			var pe *pgError
			if !errors.As(err, &pe) || pe.resp.Code != c.state {
				t.Errorf("%q: %v, want SQLSTATE %s", c.sql, err, c.state)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.sql, err)
			continue
		}
		if st.kind != c.kind || st.name != c.name || st.value != c.value || c.query != "" && st.query != c.query {
			t.Errorf("%q: kind %d name %q value %q query %q", c.sql, st.kind, st.name, st.value, st.query)
		}
	}
}

func TestParseOptions(t *testing.T) {
	got := parseOptions(`-c gateway.purpose=research -cgateway.case_ref=FOI\ 1 --application_name=x junk`)
	want := map[string]string{"gateway.purpose": "research", "gateway.case_ref": "FOI 1", "application_name": "x"}
	if !maps.Equal(got, want) {
		t.Errorf("parseOptions: %v, want %v", got, want)
	}
}
