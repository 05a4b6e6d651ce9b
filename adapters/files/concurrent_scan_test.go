package files

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// TestConcurrentScansOfAMultiFileCSVTable: as many scans at once as the
// source has connections, each of a CSV table spread over twelve files,
// all succeed within the adapter's own memory limit. Found by the
// differential test (cmd/gateway): with DuckDB's default 32 MB CSV buffer per
// open file, two scans at once of Glasgow's twelve monthly files failed with
// "Out of Memory" in the adapter's 256 MB DuckDB.
func TestConcurrentScansOfAMultiFileCSVTable(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for m := 1; m <= 12; m++ {
		var b strings.Builder
		b.WriteString("id,amount,label\n")
		for i := range 40 {
			fmt.Fprintf(&b, "%d,%d.25,Label %d\n", m*100+i, i*10, i%7)
		}
		files[fmt.Sprintf("spend/2024-%02d.csv", m)] = b.String()
	}
	write(t, dir, files)
	s := open(t, config.Source{Path: dir})
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Scan(context.Background(), gateway.ScanRequest{Table: "spend", Limit: -1})
				if err != nil {
					errs[i] = err
					return
				}
				n := 0
				for res.Reader.Next() {
					n += int(res.Reader.RecordBatch().NumRows())
				}
				err = res.Reader.Err()
				res.Reader.Release()
				if err == nil && n != 480 {
					err = fmt.Errorf("%d rows, want 480", n)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, scan %d: %v", round, i, err)
			}
		}
	}
}
