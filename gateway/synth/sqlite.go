package synth

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // SQLite driver, pure Go
)

func sqliteType(k Kind) string {
	switch k {
	case Integer, Boolean:
		return "INTEGER"
	case Decimal:
		return "NUMERIC"
	}
	return "TEXT"
}

// WriteSQLite writes the tables to a new SQLite file at path (an existing
// file is replaced). Dates are ISO TEXT, amounts NUMERIC, booleans 0/1.
func WriteSQLite(ctx context.Context, path string, tables ...*Table) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("synth: sqlite %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("synth: sqlite %s: %w", path, err)
	}
	defer db.Close()
	for _, t := range tables {
		if err := writeSQLiteTable(ctx, db, t); err != nil {
			return fmt.Errorf("synth: sqlite %s: table %s: %w", path, t.Name, err)
		}
	}
	return db.Close()
}

func writeSQLiteTable(ctx context.Context, db *sql.DB, t *Table) error {
	cols := make([]string, len(t.Columns))
	marks := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = quoteIdent(c.Name) + " " + sqliteType(c.Kind)
		marks[i] = "?"
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", quoteIdent(t.Name), strings.Join(cols, ", "))); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%s)", quoteIdent(t.Name), strings.Join(marks, ", ")))
	if err != nil {
		return err
	}
	args := make([]any, len(t.Columns))
	for _, row := range t.Rows {
		for i, v := range row {
			switch x := v.(type) {
			case time.Time:
				args[i] = x.Format("2006-01-02")
			case Money:
				args[i] = x.String()
			default:
				args[i] = x
			}
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// quoteIdent double-quotes an identifier (SQLite, DuckDB, PostgreSQL).
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
