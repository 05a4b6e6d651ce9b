package exec

import "testing"

// BenchmarkOpenQueryDB is the fixed cost every query that runs in DuckDB
// pays before it reads a row: a fresh sandboxed in-memory DuckDB and a
// connection, then closing both.
func BenchmarkOpenQueryDB(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		_, _, closeDB, err := openQueryDB("1GB", 1, dir, "")
		if err != nil {
			b.Fatal(err)
		}
		closeDB()
	}
}
