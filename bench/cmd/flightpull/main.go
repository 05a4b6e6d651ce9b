// Command flightpull runs one query over Arrow Flight SQL with the ADBC
// Flight SQL driver (what a BI tool or notebook uses), reads every batch and
// prints the rows, the batches, the time taken and the time to the first
// record batch, all from before it connects. It talks to 127.0.0.1 only.
//
//	flightpull --addr 127.0.0.1:18815 --key bench-key --sql 'SELECT ...'
//	rows=1000000 ms=6283 first_ms=4561 batches=489
//
// first_ms is -1 when the result has no batch.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/apache/arrow-adbc/go/adbc"
	adbcflight "github.com/apache/arrow-adbc/go/adbc/driver/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18815", "Flight SQL address (loopback only)")
	key := flag.String("key", "bench-key", "API key")
	purpose := flag.String("purpose", "research", "x-gateway-purpose")
	q := flag.String("sql", "", "query")
	flag.Parse()
	if err := run(*addr, *key, *purpose, *q); err != nil {
		fmt.Fprintln(os.Stderr, "flightpull:", err)
		os.Exit(1)
	}
}

func run(addr, key, purpose, q string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		return fmt.Errorf("address %q: loopback only", addr)
	}
	start := time.Now()
	ctx := context.Background()
	db, err := adbcflight.NewDriver(memory.DefaultAllocator).NewDatabase(map[string]string{
		adbc.OptionKeyURI:                                          "grpc://" + addr,
		adbcflight.OptionAuthorizationHeader:                       "Bearer " + key,
		adbcflight.OptionRPCCallHeaderPrefix + "x-gateway-purpose": purpose,
		adbcflight.OptionTimeoutFetch:                              "600",
		adbcflight.OptionTimeoutQuery:                              "600",
	})
	if err != nil {
		return err
	}
	defer db.Close()
	cnxn, err := db.Open(ctx)
	if err != nil {
		return err
	}
	defer cnxn.Close()
	stmt, err := cnxn.NewStatement()
	if err != nil {
		return err
	}
	defer stmt.Close()
	if err := stmt.SetSqlQuery(q); err != nil {
		return err
	}
	rdr, _, err := stmt.ExecuteQuery(ctx)
	if err != nil {
		return err
	}
	defer rdr.Release()
	var rows, batches int64
	first := time.Duration(-1)
	for rdr.Next() {
		if batches == 0 {
			first = time.Since(start)
		}
		batches++
		rows += rdr.RecordBatch().NumRows()
	}
	if err := rdr.Err(); err != nil {
		return fmt.Errorf("read after %d rows: %w", rows, err)
	}
	firstMS := int64(-1)
	if first >= 0 {
		firstMS = first.Milliseconds()
	}
	fmt.Printf("rows=%d ms=%d first_ms=%d batches=%d\n", rows, time.Since(start).Milliseconds(), firstMS, batches)
	return nil
}
