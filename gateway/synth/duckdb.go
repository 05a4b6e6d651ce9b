package synth

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// WriteDuckDB writes the tables to a new DuckDB database file at path (an
// existing file is replaced), with typed columns: VARCHAR, DATE,
// DECIMAL(14,2), INTEGER, BOOLEAN.
func WriteDuckDB(ctx context.Context, path string, tables ...*Table) error {
	for _, p := range []string{path, path + ".wal"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("synth: duckdb %s: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("synth: duckdb %s: %w", path, err)
	}
	db, err := sql.Open("duckdb", path)
	if err != nil {
		return fmt.Errorf("synth: duckdb %s: %w", path, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("synth: duckdb %s: %w", path, err)
	}
	defer conn.Close()
	for _, t := range tables {
		if err := loadDuckDB(ctx, conn, t.Name, t, nil); err != nil {
			return fmt.Errorf("synth: duckdb %s: table %s: %w", path, t.Name, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("synth: duckdb %s: %w", path, err)
	}
	conn.Close()
	return db.Close()
}

// WriteParquet writes t as typed Parquet files under dir/<table>/, one per
// part (dir/payments/2024-25.parquet).
func WriteParquet(ctx context.Context, dir string, t *Table) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("synth: parquet %s: %w", t.Name, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("synth: parquet %s: %w", t.Name, err)
	}
	defer conn.Close()
	names, rows := t.parts()
	for _, p := range names {
		path := partFile(dir, t, p, ".parquet")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("synth: parquet %s: %w", t.Name, err)
		}
		if err := loadDuckDB(ctx, conn, "part", t, rows[p]); err != nil {
			return fmt.Errorf("synth: parquet %s: %w", t.Name, err)
		}
		q := fmt.Sprintf("COPY part TO %s (FORMAT parquet)", quoteString(path))
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("synth: parquet %s: %w", path, err)
		}
		if _, err := conn.ExecContext(ctx, "DROP TABLE part"); err != nil {
			return fmt.Errorf("synth: parquet %s: %w", path, err)
		}
	}
	return nil
}

// loadDuckDB creates table name from t's columns and appends the rows with
// the given indexes (all rows when idx is nil). Amounts go through a
// VARCHAR staging column so they arrive exact.
func loadDuckDB(ctx context.Context, conn *sql.Conn, name string, t *Table, idx []int) error {
	stage := make([]string, len(t.Columns))
	final := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		st := c.Kind.SQLType()
		switch c.Kind {
		case Decimal:
			st = "VARCHAR"
		case Integer:
			st = "BIGINT"
		}
		stage[i] = fmt.Sprintf("%s %s", quoteIdent(c.Name), st)
		final[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", quoteIdent(c.Name), c.Kind.SQLType(), quoteIdent(c.Name))
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TEMP TABLE synth_stage (%s)", strings.Join(stage, ", "))); err != nil {
		return err
	}
	err := conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "synth_stage")
		if err != nil {
			return err
		}
		vals := make([]driver.Value, len(t.Columns))
		add := func(row []any) error {
			for j, v := range row {
				if m, ok := v.(Money); ok {
					vals[j] = m.String()
				} else {
					vals[j] = v
				}
			}
			return a.AppendRow(vals...)
		}
		if idx == nil {
			for _, row := range t.Rows {
				if err := add(row); err != nil {
					a.Close()
					return err
				}
			}
		} else {
			for _, i := range idx {
				if err := add(t.Rows[i]); err != nil {
					a.Close()
					return err
				}
			}
		}
		return a.Close()
	})
	if err != nil {
		return err
	}
	q := fmt.Sprintf("CREATE TABLE %s AS SELECT %s FROM synth_stage", quoteIdent(name), strings.Join(final, ", "))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "DROP TABLE synth_stage")
	return err
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
