package synth

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

func pgType(k Kind) string {
	switch k {
	case Decimal:
		return "NUMERIC(14,2)"
	case Text:
		return "TEXT"
	}
	return k.SQLType()
}

// WritePostgres writes the tables into schema (created if missing; tables
// of the same name are replaced) of the PostgreSQL database at dsn, loading
// rows with COPY.
func WritePostgres(ctx context.Context, dsn, schema string, tables ...*Table) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("synth: postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(schema)); err != nil {
		return fmt.Errorf("synth: postgres schema %s: %w", schema, err)
	}
	for _, t := range tables {
		if err := writePostgresTable(ctx, conn, schema, t); err != nil {
			return fmt.Errorf("synth: postgres %s.%s: %w", schema, t.Name, err)
		}
	}
	return nil
}

func writePostgresTable(ctx context.Context, conn *pgx.Conn, schema string, t *Table) error {
	q := quoteIdent(schema) + "." + quoteIdent(t.Name)
	cols := make([]string, len(t.Columns))
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = quoteIdent(c.Name) + " " + pgType(c.Kind)
		names[i] = c.Name
	}
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+q); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", q, strings.Join(cols, ", "))); err != nil {
		return err
	}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= len(t.Rows) {
			return nil, nil
		}
		row := make([]any, len(t.Columns))
		for j, v := range t.Rows[i] {
			switch x := v.(type) {
			case Money:
				row[j] = pgtype.Numeric{Int: big.NewInt(int64(x)), Exp: -2, Valid: true}
			case int64:
				row[j] = int32(x)
			default:
				row[j] = x
			}
		}
		i++
		return row, nil
	})
	n, err := conn.CopyFrom(ctx, pgx.Identifier{schema, t.Name}, names, src)
	if err != nil {
		return err
	}
	if int(n) != len(t.Rows) {
		return fmt.Errorf("copied %d rows of %d", n, len(t.Rows))
	}
	return nil
}

func mysqlType(k Kind) string {
	switch k {
	case Text:
		return "VARCHAR(255)"
	case Integer:
		return "INT"
	}
	return k.SQLType()
}

func quoteMySQL(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// MySQLBatch is the number of rows in one INSERT.
const MySQLBatch = 500

// WriteMySQL writes the tables into database (created if missing; tables of
// the same name are replaced) through db, a handle on a MariaDB or MySQL
// server, with batched multi-row INSERTs.
func WriteMySQL(ctx context.Context, db *sql.DB, database string, tables ...*Table) error {
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteMySQL(database)+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("synth: mysql database %s: %w", database, err)
	}
	for _, t := range tables {
		if err := writeMySQLTable(ctx, db, database, t); err != nil {
			return fmt.Errorf("synth: mysql %s.%s: %w", database, t.Name, err)
		}
	}
	return nil
}

func writeMySQLTable(ctx context.Context, db *sql.DB, database string, t *Table) error {
	q := quoteMySQL(database) + "." + quoteMySQL(t.Name)
	cols := make([]string, len(t.Columns))
	marks := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = quoteMySQL(c.Name) + " " + mysqlType(c.Kind)
		marks[i] = "?"
	}
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+q); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s) CHARACTER SET utf8mb4", q, strings.Join(cols, ", "))); err != nil {
		return err
	}
	tuple := "(" + strings.Join(marks, ", ") + ")"
	for start := 0; start < len(t.Rows); start += MySQLBatch {
		end := min(start+MySQLBatch, len(t.Rows))
		var b strings.Builder
		b.WriteString("INSERT INTO " + q + " VALUES ")
		args := make([]any, 0, (end-start)*len(t.Columns))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			for _, v := range t.Rows[i] {
				if m, ok := v.(Money); ok {
					args = append(args, m.String())
				} else {
					args = append(args, v)
				}
			}
		}
		if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
