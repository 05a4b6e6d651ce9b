// Command flightpull runs one query over Arrow Flight SQL with the ADBC
// Flight SQL driver (what a BI tool or notebook uses), reads every batch and
// prints the rows and the time taken. It talks to 127.0.0.1 only.
//
//	flightpull --addr 127.0.0.1:18815 --key bench-key --sql 'SELECT ...'
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
	var rows int64
	for rdr.Next() {
		rows += rdr.RecordBatch().NumRows()
	}
	if err := rdr.Err(); err != nil {
		return err
	}
	fmt.Printf("rows=%d ms=%d\n", rows, time.Since(start).Milliseconds())
	return nil
}
