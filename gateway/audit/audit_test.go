package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway"
)

// record returns a varied record: every third has no input or result (a
// request that failed early), every other one is denied with an error.
func record(i int) *Record {
	r := &Record{
		QueryID:     fmt.Sprintf("q-%d", i),
		RequestedBy: "127.0.0.1:5000",
		Door:        DoorHTTP,
		Action:      "query",
		Requester:   Requester{ID: "analyst", Organisation: "Fife Council"},
		SQL:         "SELECT count(*) FROM std.spend WHERE amount > 500 AND council <> 'x' -- & more",
		Tables:      []string{"std.spend"},
		Purpose:     "fraud-prevention",
		CaseRef:     "CASE-1",
		Agreements:  []string{"dsa-2024-007"},
		Rows:        int64(i),
		DurationMS:  1.25,
		Outcome:     OutcomeAllowed,
	}
	if i%3 != 0 {
		r.Input = &gateway.PolicyInput{
			Action:    "query",
			Requester: gateway.Requester{ID: "analyst", Organisation: "Fife Council", Roles: []string{"analyst"}},
			Purpose:   "fraud-prevention", QueryID: r.QueryID, Time: "2025-01-02T03:04:05Z",
			Tables: []gateway.PolicyTable{{Source: "fife", Council: "Fife Council", GSS: "S12000047",
				Table: "spend", Dataset: "spend", Columns: []string{"amount"}}},
		}
		r.Result = &gateway.Decision{Revision: "r1", Tables: []gateway.TableDecision{{Allowed: true, Reason: "agreement",
			Masks:      map[string]gateway.Mask{"beneficiary": {Kind: gateway.MaskRedact}},
			Agreements: []string{"dsa-2024-007"}}}}
	}
	if i%2 == 1 {
		r.Outcome, r.Error, r.Agreements, r.Tables = OutcomeDenied, "fife.spend: no agreement", nil, nil
	}
	return r
}

// newLog opens a log in a fresh directory and appends n records.
func newLog(t testing.TB, n int) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i := 1; i <= n; i++ {
		if err := l.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	return l, path
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendVerify(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l, path := newLog(t, n)
			seq, hash := l.Head()
			rep, err := VerifyFile(path)
			if err != nil || !rep.OK() {
				t.Fatalf("VerifyFile: %+v %v", rep, err)
			}
			want := Report{Records: n, LastSeq: uint64(n), LastHash: hash, HeadSeq: seq}
			if n > 0 {
				want.FirstSeq = 1
			}
			if rep != want || seq != uint64(n) {
				t.Errorf("report %+v, want %+v", rep, want)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("log mode %v %v, want 0600", fi.Mode(), err)
			}
		})
	}
}

func TestAppendFills(t *testing.T) {
	l, path := newLog(t, 1)
	loc := time.FixedZone("BST", 3600)
	r := record(2)
	r.Timestamp = time.Date(2025, 6, 1, 12, 0, 0, 123456789, loc)
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	var first Record
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(r.DecisionID) {
		t.Errorf("decision id %q is not a UUID", r.DecisionID)
	}
	if r.Seq != 2 || r.PrevHash != first.Hash || first.PrevHash != "" || first.Seq != 1 || len(r.Hash) != 64 {
		t.Errorf("chain: first %d %q %q, second %d %q %q", first.Seq, first.PrevHash, first.Hash, r.Seq, r.PrevHash, r.Hash)
	}
	if r.Path != DecisionPath || first.Timestamp.IsZero() || first.Timestamp.Location() != time.UTC {
		t.Errorf("path %q, first timestamp %v", r.Path, first.Timestamp)
	}
	if !bytes.Contains(lines[1], []byte(`"timestamp":"2025-06-01T11:00:00.123456789Z"`)) {
		t.Errorf("timestamp not RFC 3339 nano UTC: %s", lines[1])
	}
	if !bytes.Contains(lines[1], []byte(`amount > 500 AND council <> 'x' -- & more`)) {
		t.Errorf("SQL escaped: %s", lines[1])
	}
	// The canonical form: the record marshalled from the struct with hash
	// "" is what was hashed, so decoding a line and encoding it again gives
	// the same line.
	for i, line := range lines {
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		again, err := encode(&rec)
		if err != nil || !bytes.Equal(again, line) {
			t.Errorf("line %d: re-encoded\n%s\nwant\n%s", i+1, again, line)
		}
	}
}

// TestSameKeys: DuckDB's read_json infers one schema for gateway.audit only
// if every line has the same top-level keys.
func TestSameKeys(t *testing.T) {
	_, path := newLog(t, 12)
	want := []string{"decision_id", "timestamp", "path", "input", "result", "requested_by",
		"query_id", "door", "action", "requester", "sql", "tables", "purpose", "case_ref", "agreements",
		"rows", "duration_ms", "outcome", "error", "seq", "prev_hash", "hash"}
	var sawNull bool
	for i, line := range readLines(t, path) {
		dec := json.NewDecoder(bytes.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("line %d: %v %v", i+1, tok, err)
		}
		var keys []string
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, tok.(string))
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			sawNull = sawNull || string(v) == "null"
		}
		if !slices.Equal(keys, want) {
			t.Errorf("line %d keys\n%v\nwant\n%v", i+1, keys, want)
		}
	}
	if !sawNull {
		t.Error("no record had a null field; the test should cover them")
	}
}

func TestResume(t *testing.T) {
	l, path := newLog(t, 3)
	_, hash := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if seq, h := l2.Head(); seq != 3 || h != hash {
		t.Fatalf("resumed at %d %s, want 3 %s", seq, h, hash)
	}
	r := record(4)
	if err := l2.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 4 || r.PrevHash != hash {
		t.Errorf("after reopen: seq %d prev %s", r.Seq, r.PrevHash)
	}
	if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.Records != 4 {
		t.Errorf("VerifyFile: %+v %v", rep, err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	l, path := newLog(t, 0)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.Append(context.Background(), record(w*each+i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.Records != workers*each || rep.LastSeq != workers*each {
		t.Errorf("VerifyFile: %+v %v", rep, err)
	}
}

// rehash re-encodes line after edit, as a forger who knows the scheme would.
func rehash(t *testing.T, line []byte, edit func(*Record)) []byte {
	t.Helper()
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	edit(&r)
	out, err := encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTamper(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, path string, lines [][]byte) [][]byte // returns the new lines
		kind   string
		line   int
		// chainOK: Verify alone (no head file) sees nothing wrong.
		chainOK bool
	}{
		{"edit a field", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte(`"rows":3`), []byte(`"rows":0`), 1)
			return ls
		}, ProblemEdited, 3, false},
		{"edit the sql", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[3] = bytes.Replace(ls[3], []byte(`count(*)`), []byte(`count(1)`), 1)
			return ls
		}, ProblemEdited, 4, false},
		{"add a key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`{`), []byte(`{"note":"ok",`), 1)
			return ls
		}, ProblemEdited, 2, false},
		{"edit and recompute the hash", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[2] = rehash(t, ls[2], func(r *Record) { r.Rows = 99 })
			return ls
		}, ProblemPrevHash, 4, false},
		{"delete a middle record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return slices.Delete(ls, 2, 3)
		}, ProblemSeq, 3, false},
		{"delete the first record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return ls[1:]
		}, ProblemSeq, 1, false},
		{"swap two records", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[1], ls[2] = ls[2], ls[1]
			return ls
		}, ProblemSeq, 2, false},
		{"repeat a record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return slices.Insert(ls, 3, ls[2])
		}, ProblemSeq, 4, false},
		{"delete and renumber", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls = slices.Delete(ls, 2, 3)
			ls[2] = rehash(t, ls[2], func(r *Record) { r.Seq = 3 })
			return ls
		}, ProblemPrevHash, 3, false},
		{"malformed line", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[3] = []byte("{\"seq\":4,\n")
			return ls
		}, ProblemMalformed, 4, false},
		{"blank line", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return slices.Insert(ls, 2, []byte("\n"))
		}, ProblemMalformed, 3, false},
		{"last line cut short", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[4] = ls[4][:len(ls[4])/2]
			return ls
		}, ProblemMalformed, 5, false},
		{"truncate the tail", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return ls[:3]
		}, ProblemTruncated, 4, true},
		{"empty the log", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return nil
		}, ProblemTruncated, 1, true},
		{"replace the last record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[4] = rehash(t, ls[4], func(r *Record) { r.Rows = 0 })
			return ls
		}, ProblemHead, 5, true},
		{"delete the head file", func(t *testing.T, path string, ls [][]byte) [][]byte {
			if err := os.Remove(path + ".head"); err != nil {
				t.Fatal(err)
			}
			return ls[:3]
		}, ProblemHead, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, path := newLog(t, 5)
			l.Close()
			lines := c.tamper(t, path, readLines(t, path))
			writeLines(t, path, lines)

			rep, err := VerifyFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problem == nil || rep.Problem.Kind != c.kind || rep.Problem.Line != c.line {
				t.Fatalf("VerifyFile: %+v (%v), want %s at line %d", rep, rep.Problem, c.kind, c.line)
			}
			if c.kind != ProblemHead && rep.Records != c.line-1 {
				t.Errorf("records checked %d, want %d", rep.Records, c.line-1)
			}
			t.Logf("%v", rep.Problem)

			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err = Verify(f)
			if err != nil || rep.OK() != c.chainOK {
				t.Errorf("Verify: %+v %v, want ok=%v", rep, err, c.chainOK)
			}

			// A log that does not verify at its end is not appended to,
			// and is left as it was.
			before, _ := os.ReadFile(path)
			if c.line >= len(lines) || c.kind == ProblemHead {
				if l, err := Open(path); err == nil {
					l.Close()
					t.Errorf("Open accepted the log")
				} else {
					t.Logf("Open: %v", err)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(before, after) {
					t.Error("Open changed the log")
				}
			}
		})
	}
}

func TestOpenRefusesCorruptTail(t *testing.T) {
	cases := []struct {
		name string
		last func([]byte) []byte // rewrites the last line
		want string
	}{
		{"garbage", func([]byte) []byte { return []byte("not json\n") }, "line 4"},
		{"cut short", func(b []byte) []byte { return b[:40] }, "line 4"},
		{"edited", func(b []byte) []byte { return bytes.Replace(b, []byte(`"rows":4`), []byte(`"rows":9`), 1) }, "line 4"},
		{"no hash", func([]byte) []byte { return []byte(`{"seq":4,"prev_hash":"","hash":""}` + "\n") }, "line 4"},
		{"blank", func([]byte) []byte { return []byte("\n") }, "line 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, path := newLog(t, 4)
			l.Close()
			lines := readLines(t, path)
			lines[3] = c.last(lines[3])
			writeLines(t, path, lines)
			_, err := Open(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v, want an error naming %s and %s", err, path, c.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, bytes.Join(lines, nil)) {
				t.Error("Open changed the log")
			}
		})
	}
}

// TestHeadBehind: the gateway stopped after a record reached the disk but
// before its head did. The log is accepted when the chain reaches the head's
// record with the head's hash.
func TestHeadBehind(t *testing.T) {
	l, path := newLog(t, 2)
	oldHead, err := os.ReadFile(path + ".head")
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 4; i++ {
		if err := l.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if err := os.WriteFile(path+".head", oldHead, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.HeadSeq != 2 || rep.LastSeq != 4 {
		t.Fatalf("VerifyFile: %+v %v", rep, err)
	}
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record(5)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.HeadSeq != 5 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}

	// A head behind the log that does not match it is refused.
	bad := encodeSlot(headState{Seq: 2, Hash: strings.Repeat("ab", 32)})
	if err := os.WriteFile(path+".head", append(bad, encodeSlot(headState{Seq: 1, Hash: strings.Repeat("cd", 32)})...), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, _ := VerifyFile(path); rep.OK() || rep.Problem.Kind != ProblemHead || rep.Problem.Line != 2 {
		t.Errorf("VerifyFile: %+v", rep)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Open: %v, want a refusal at line 2", err)
	}
}

// TestTornHead: a crash while a head slot is written spoils that slot
// only; the other slot holds the previous head, one record behind the log.
func TestTornHead(t *testing.T) {
	l, path := newLog(t, 5)
	l.Close()
	b, err := os.ReadFile(path + ".head")
	if err != nil {
		t.Fatal(err)
	}
	copy(b[1*slotSize+20:], "0000000000") // seq 5 is in slot 1
	if err := os.WriteFile(path+".head", b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.HeadSeq != 4 {
		t.Fatalf("VerifyFile: %+v %v", rep, err)
	}
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record(6)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.HeadSeq != 6 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
	// Both slots spoilt: refused.
	copy(b[20:], "0000000000")
	if err := os.WriteFile(path+".head", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, _ := VerifyFile(path); rep.OK() || rep.Problem.Kind != ProblemHead {
		t.Errorf("VerifyFile: %+v", rep)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Open: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l, held := newLog(t, 1)
	defer l.Close()
	corruptHead := filepath.Join(dir, "corrupt.jsonl")
	if err := os.WriteFile(corruptHead+".head", []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, path, want string }{
		{"no path", "", "no log file"},
		{"directory is a file", filepath.Join(notDir, "audit.jsonl"), "not a directory"},
		{"in use", held, "in use"},
		{"corrupt head", corruptHead, "corrupt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := Open(c.path)
			if err == nil {
				l.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open(%q): %v, want %q", c.path, err, c.want)
			}
		})
	}
}

func TestWriteFailure(t *testing.T) {
	cases := []struct {
		name     string
		breakLog func(t *testing.T, l *Log)
		want     string
	}{
		{"closed", func(t *testing.T, l *Log) { l.Close() }, "closed"},
		{"file closed underneath", func(t *testing.T, l *Log) { l.f.Close() }, "write"},
		{"file not writable", func(t *testing.T, l *Log) {
			f, err := os.Open(l.path) // read-only
			if err != nil {
				t.Fatal(err)
			}
			l.f.Close()
			l.f = f
		}, "write"},
		{"head file not writable", func(t *testing.T, l *Log) {
			f, err := os.Open(l.head) // read-only
			if err != nil {
				t.Fatal(err)
			}
			l.hf.Close()
			l.hf = f
		}, "head file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, _ := newLog(t, 2)
			c.breakLog(t, l)
			for i := range 2 { // the failure sticks
				err := l.Append(context.Background(), record(3))
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("append %d: %v, want an error with %q", i, err, c.want)
				}
				if gateway.ErrorCode(err) != gateway.CodeUnavailable {
					t.Errorf("code %s, want unavailable", gateway.ErrorCode(err))
				}
			}
		})
	}
}

func TestAppendRejects(t *testing.T) {
	l, path := newLog(t, 0)
	for _, r := range []*Record{nil, {Outcome: ""}, {Outcome: "ok"}} {
		if err := l.Append(context.Background(), r); err == nil {
			t.Errorf("Append(%+v) accepted", r)
		}
	}
	// A canceled request is still audited.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, &Record{Outcome: OutcomeCanceled, Error: "client went away"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.Records != 1 {
		t.Errorf("VerifyFile: %+v %v", rep, err)
	}
}

func TestVerifyReadError(t *testing.T) {
	_, err := Verify(iotestErrReader{})
	if err == nil {
		t.Error("no error for a failing reader")
	}
	if _, err := VerifyFile(filepath.Join(t.TempDir(), "none.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VerifyFile of a missing log: %v", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

// BenchmarkAppend measures one audited request end to end: encode, write,
// fsync the log, write and fsync the head file, rename. Run with
// AUDIT_BENCH_DIR to put the log on another file system.
func BenchmarkAppend(b *testing.B) {
	l, _ := newBenchLog(b)
	r := record(1)
	b.ReportAllocs()
	for b.Loop() {
		r.DecisionID, r.Timestamp = "", time.Time{}
		if err := l.Append(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel: appends from many goroutines serialise on the
// log's mutex, so this is throughput under contention.
func BenchmarkAppendParallel(b *testing.B) {
	l, _ := newBenchLog(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(context.Background(), record(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFsync is the floor: one write and fsync of a record-sized line
// to an O_APPEND file, nothing else.
func BenchmarkFsync(b *testing.B) {
	dir := benchDir(b)
	f, err := os.OpenFile(filepath.Join(dir, "raw.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := record(1)
	r.Seq = 1
	line, err := encode(r)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("AUDIT_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "auditbench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func newBenchLog(b *testing.B) (*Log, string) {
	path := filepath.Join(benchDir(b), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l, path
}

// BenchmarkHead compares two ways to keep the head file: in place in two
// slots with fdatasync (what Log does), and a temporary file fsynced and
// renamed over the old one (the first version; see head.go).
func BenchmarkHead(b *testing.B) {
	h := headState{Seq: 1, Hash: strings.Repeat("ab", 32)}
	b.Run("slots", func(b *testing.B) {
		f, err := openHead(filepath.Join(benchDir(b), "a.head"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for b.Loop() {
			h.Seq++
			if err := writeHead(f, h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rename", func(b *testing.B) {
		path := filepath.Join(benchDir(b), "a.head")
		for b.Loop() {
			h.Seq++
			f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(encodeSlot(h)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			if err := os.Rename(path+".tmp", path); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, o := range []string{OutcomeAllowed, OutcomeDenied} {
		if err := l.Append(ctx, &Record{Outcome: o, Requester: Requester{ID: "gov"}, Tables: []string{"std.x"}, SQL: "SELECT 1"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	tb := NewTable(path)
	res, err := tb.Scan(ctx, gateway.ScanRequest{Table: TableName, Columns: []string{"seq", "outcome", "tables", "input"}, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	if !res.Reader.Next() {
		t.Fatal("no batch")
	}
	rec := res.Reader.RecordBatch()
	if rec.NumRows() != 2 || rec.NumCols() != 4 {
		t.Fatalf("got %d rows %d cols", rec.NumRows(), rec.NumCols())
	}
	if rec.Column(0).ValueStr(1) != "2" || rec.Column(1).ValueStr(1) != OutcomeDenied || rec.Column(2).ValueStr(0) != `["std.x"]` || rec.Column(3).IsValid(0) {
		t.Errorf("values: %v %v %v %v", rec.Column(0), rec.Column(1), rec.Column(2), rec.Column(3))
	}
	if _, err := tb.Scan(ctx, gateway.ScanRequest{Table: "nope"}); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("unknown table: %v", err)
	}
}
