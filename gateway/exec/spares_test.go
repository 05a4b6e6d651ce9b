package exec

import (
	"context"
	"testing"

	"github.com/councildata/gateway/gateway/config"
)

// TestSparesAreFreshAndNeverReused: every database a query takes is one
// no other query had: what one query created is not in the next one's,
// and spares left at Close are closed.
func TestSparesAreFreshAndNeverReused(t *testing.T) {
	ctx := context.Background()
	x := New(config.Query{MemoryLimit: "256MB", Threads: 1, TempDir: t.TempDir()}, nil)
	defer x.Close()
	seen := map[*spareDB]bool{}
	for i := range 6 {
		q, err := x.spares.take()
		if err != nil {
			t.Fatal(err)
		}
		if seen[q] {
			t.Fatalf("take %d returned a database already used", i)
		}
		seen[q] = true
		names, err := countsOf(ctx, q.conn, "SELECT count(*) FROM duckdb_tables() WHERE NOT internal")
		if err != nil || len(names) != 1 || names[0] != 0 {
			t.Fatalf("take %d: a database with tables in it: %v %v", i, names, err)
		}
		if err := q.conn.Exec(ctx, "CREATE TABLE left_behind AS SELECT 42 AS secret"); err != nil {
			t.Fatal(err)
		}
		q.release()
	}
}
