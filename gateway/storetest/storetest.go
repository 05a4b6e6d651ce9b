// Package storetest gives tests their own PostgreSQL or MariaDB database on
// the local servers (127.0.0.1:5432, user postgres; 127.0.0.1:3306, user
// root): a uniquely named database created for the test and dropped when it
// ends. Where a server is not running the test is skipped with a message
// saying how to start it, unless the CI environment variable is set, where
// it fails: CI must never pass by skipping.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // MariaDB driver
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver
)

// Server addresses; override with GATEWAY_TEST_PG and GATEWAY_TEST_MYSQL
// (a DSN without a database name).
var (
	PostgresBase = envOr("GATEWAY_TEST_PG", "postgres://postgres@127.0.0.1:5432/%s?sslmode=disable")
	MySQLBase    = envOr("GATEWAY_TEST_MYSQL", "root@tcp(127.0.0.1:3306)/%s?parseTime=true&multiStatements=true")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// UniqueName returns a database name unique to this test run.
func UniqueName(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
	if len(name) > 30 {
		name = name[:30]
	}
	return fmt.Sprintf("gw_%s_%s", name, hex.EncodeToString(b))
}

func unavailable(t testing.TB, what, start string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not reachable (%v); CI must have it running: %s", what, err, start)
	}
	t.Skipf("%s is not reachable (%v); start it with: %s", what, err, start)
}

// StartPostgres and StartMariaDB are the commands that start the servers.
const (
	StartPostgres = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
	StartMariaDB  = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
)

// Postgres creates a fresh PostgreSQL database and returns its DSN and an
// open handle. The database is dropped when the test ends.
func Postgres(t testing.TB) (dsn string, db *sql.DB) {
	t.Helper()
	return create(t, "pgx", PostgresBase, "postgres", "PostgreSQL on 127.0.0.1:5432", StartPostgres,
		func(name string) string { return `CREATE DATABASE "` + name + `"` },
		func(name string) string { return `DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)` })
}

// MySQL creates a fresh MariaDB/MySQL database and returns its DSN and an
// open handle. The database is dropped when the test ends.
func MySQL(t testing.TB) (dsn string, db *sql.DB) {
	t.Helper()
	return create(t, "mysql", MySQLBase, "", "MariaDB on 127.0.0.1:3306", StartMariaDB,
		func(name string) string { return "CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4" },
		func(name string) string { return "DROP DATABASE IF EXISTS `" + name + "`" })
}

func create(t testing.TB, driver, base, adminDB, what, start string, createSQL, dropSQL func(string) string) (string, *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open(driver, fmt.Sprintf(base, adminDB))
	if err != nil {
		unavailable(t, what, start, err)
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		unavailable(t, what, start, err)
	}
	name := UniqueName(t)
	if _, err := admin.ExecContext(ctx, createSQL(name)); err != nil {
		admin.Close()
		t.Fatalf("create test database %s: %v", name, err)
	}
	dsn := fmt.Sprintf(base, name)
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, dropSQL(name)); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
		admin.Close()
	})
	return dsn, db
}
