package files

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// BenchmarkScanCSV is a small scan (ten rows) of a CSV table, the kind a
// gateway query sends a council many times: over one file, and over twelve
// monthly files. Before the views were pinned, each scan re-ran DuckDB's CSV
// sniffer over the files.
func BenchmarkScanCSV(b *testing.B) {
	row := func(m, i int) string {
		return fmt.Sprintf("%d,2024-%02d-%02d,Supplier %d,\"Purpose %d, part %d\",%d.%02d", m*1000+i, m, i%28+1, i%37, i%11, i%3, i*7, i%100)
	}
	header := "id,paid,supplier,purpose,amount"
	for _, bc := range []struct {
		name          string
		months, lines int
	}{{"one_file", 1, 1000}, {"twelve_files", 12, 100}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			files := map[string]string{}
			for m := 1; m <= bc.months; m++ {
				var sb strings.Builder
				sb.WriteString(header + "\n")
				for i := range bc.lines {
					sb.WriteString(row(m, i) + "\n")
				}
				files[fmt.Sprintf("spend/2024-%02d.csv", m)] = sb.String()
			}
			write(b, dir, files)
			s, err := Open(context.Background(), config.Source{ID: "leeds", Path: dir})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			req := gateway.ScanRequest{Table: "spend", Columns: []string{"id", "supplier", "amount"}, Limit: 10}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := s.Scan(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				n := int64(0)
				for res.Reader.Next() {
					n += res.Reader.RecordBatch().NumRows()
				}
				if err := res.Reader.Err(); err != nil {
					b.Fatal(err)
				}
				res.Reader.Release()
				if n != 10 {
					b.Fatalf("%d rows, want 10", n)
				}
			}
		})
	}
}
