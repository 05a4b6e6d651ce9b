package exec

import (
	"context"
	"testing"
)

// TestQueryDatabaseIsSandboxed reads a query database's own settings (no
// query may read them: gateway/enforce refuses current_setting): external
// access and extension loading off, and the configuration locked.
func TestQueryDatabaseIsSandboxed(t *testing.T) {
	ctx := context.Background()
	_, conn, closeDB, err := openQueryDB("256MB", 1, t.TempDir(), "1GiB")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	if err := conn.Exec(ctx, "SET lock_configuration = true"); err != nil {
		t.Fatal(err)
	}
	r, err := conn.Query(ctx, `SELECT current_setting('enable_external_access')::VARCHAR || '|' || current_setting('lock_configuration')::VARCHAR || '|' || current_setting('autoload_known_extensions')::VARCHAR || '|' || current_setting('autoinstall_known_extensions')::VARCHAR || '|' || current_setting('max_temp_directory_size')::VARCHAR`)
	if err != nil {
		t.Fatal(err)
	}
	r.Next()
	if got, want := r.RecordBatch().Column(0).ValueStr(0), "false|true|false|false|1.0 GiB"; got != want {
		t.Errorf("settings %s, want %s", got, want)
	}
	r.Release()
	for _, stmt := range []string{"SET memory_limit = '10GB'", "SET enable_external_access = true", "SET max_temp_directory_size = '1TB'"} {
		if err := conn.Exec(ctx, stmt); err == nil {
			t.Errorf("%s: the configuration is not locked", stmt)
		}
	}
	if err := conn.Exec(ctx, "CREATE TABLE x AS SELECT * FROM read_text('/etc/hostname')"); err == nil {
		t.Error("a file outside the database was read")
	}
}
