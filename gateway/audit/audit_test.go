package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// newKeys returns fresh random keys for a log and the options that verify
// it.
func newKeys() (Keys, VerifyOptions) {
	k := Keys{HMAC: make([]byte, 32)}
	rand.Read(k.HMAC)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	k.Signer = priv
	return k, VerifyOptions{Key: k.HMAC, PublicKey: pub}
}

// testKeys key every test log that does not need its own keys.
var testKeys, testVerify = newKeys()

// newLog opens a keyed log (testKeys) in a fresh directory and appends n
// records.
func newLog(t testing.TB, n int) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	l, err := OpenKeyed(path, testKeys)
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
			before := time.Now().UTC()
			l, path := newLog(t, n)
			seq, hash := l.Head()
			rep, err := VerifyFileWith(path, testVerify)
			if err != nil || !rep.OK() {
				t.Fatalf("VerifyFileWith: %+v %v", rep, err)
			}
			if rep.HeadTime.Before(before) || rep.HeadTime.After(time.Now()) {
				t.Errorf("head signed at %v, want between %v and now", rep.HeadTime, before)
			}
			rep.HeadTime = time.Time{}
			want := Report{Records: n, LastSeq: uint64(n), LastHash: hash, HeadSeq: seq,
				Keyed: true, KeyID: KeyID(testKeys.HMAC), HashesChecked: true, HeadSigned: true}
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
			// Without the HMAC key the links and the signed head are
			// checked, and the report says the hashes were not.
			rep, err = VerifyFileWith(path, VerifyOptions{PublicKey: testVerify.PublicKey})
			if err != nil || !rep.OK() || rep.HashesChecked || !rep.HeadSigned || rep.Records != n {
				t.Errorf("with the public key only: %+v %v", rep, err)
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
		again, err := encode(&rec, testKeys.HMAC)
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
	l2, err := OpenKeyed(path, testKeys)
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
	if rep, err := VerifyFileWith(path, testVerify); err != nil || !rep.OK() || rep.Records != 4 {
		t.Errorf("VerifyFileWith: %+v %v", rep, err)
	}
}

// TestConcurrentAppend: appends from many goroutines share fsyncs (group
// commit) and still make one intact chain, with the head at its end.
func TestConcurrentAppend(t *testing.T) {
	l, path := newLog(t, 0)
	const workers, each = 32, 25
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
	if seq, _ := l.Head(); seq != workers*each {
		t.Errorf("head at seq %d, want %d", seq, workers*each)
	}
	rep, err := VerifyFileWith(path, testVerify)
	if err != nil || !rep.OK() || rep.Records != workers*each || rep.LastSeq != workers*each {
		t.Errorf("VerifyFile: %+v %v", rep, err)
	}
}

// TestConcurrentAppendFailure: when the shared sync fails, every append
// waiting on it fails, and so does every later one.
func TestConcurrentAppendFailure(t *testing.T) {
	l, _ := newLog(t, 2)
	f, err := os.Open(l.head) // read-only: the head cannot be written
	if err != nil {
		t.Fatal(err)
	}
	l.hf.Close()
	l.hf = f
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Append(context.Background(), record(10+i)); err != nil && gateway.ErrorCode(err) == gateway.CodeUnavailable {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 16 {
		t.Errorf("%d of 16 appends failed, want all: none of their records has a head on disk", failed.Load())
	}
	if seq, _ := l.Head(); seq != 2 {
		t.Errorf("head at seq %d, want the 2 records synced before", seq)
	}
}

// rehash re-encodes line after edit with key, as a forger who knows the
// scheme would: key nil is plain SHA-256 (a forger without the key who
// copies the unkeyed scheme), another key one who guesses.
func rehash(t *testing.T, line []byte, key []byte, edit func(*Record)) []byte {
	t.Helper()
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	edit(&r)
	out, err := encode(&r, key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rechain edits record i (0-based) and re-hashes it and every later record
// with key, fixing each prev_hash, so that the chain links again: what
// someone who can write the log does to hide an edit.
func rechain(t *testing.T, ls [][]byte, i int, key []byte, edit func(*Record)) [][]byte {
	t.Helper()
	prev := ""
	if i > 0 {
		var r Record
		json.Unmarshal(ls[i-1], &r)
		prev = r.Hash
	}
	for j := i; j < len(ls); j++ {
		ls[j] = rehash(t, ls[j], key, func(r *Record) {
			if j == i {
				edit(r)
			}
			r.PrevHash = prev
		})
		var r Record
		json.Unmarshal(ls[j], &r)
		prev = r.Hash
	}
	return ls
}

// writeHeadFile replaces the log's head file with one whose both slots
// hold h, as someone rewriting the head would.
func writeHeadFile(t *testing.T, path string, h headState) {
	t.Helper()
	if err := os.WriteFile(path+".head", append(encodeSlot(h), encodeSlot(h)...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lastHead is the head a forger would write for the log's new end: the
// last line's seq and hash.
func lastHead(t *testing.T, ls [][]byte) headState {
	t.Helper()
	if len(ls) == 0 {
		return headState{}
	}
	var r Record
	if err := json.Unmarshal(ls[len(ls)-1], &r); err != nil {
		t.Fatal(err)
	}
	return headState{Seq: r.Seq, Hash: r.Hash}
}

// TestTamper: every way of changing a keyed log that someone who can write
// it (but does not hold the signing key) might try fails verification with
// the keys, naming the first forged record, or the head. Each case also
// says what a verifier with only the public key (no HMAC key) sees: the
// links and the signed head, not edits inside a record that keep its hash.
func TestTamper(t *testing.T) {
	wrongKey := bytes.Repeat([]byte("k"), 32)
	otherKeys, _ := newKeys()
	cases := []struct {
		name   string
		tamper func(t *testing.T, path string, lines [][]byte) [][]byte // returns the new lines
		kind   string
		line   int
		// without the HMAC key (public key only): the kind and line
		// found, "" when that verifier sees nothing wrong
		pubKind string
		pubLine int
	}{
		{"edit a field", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte(`"rows":3`), []byte(`"rows":0`), 1)
			return ls
		}, ProblemEdited, 3, "", 0},
		{"edit the sql", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[3] = bytes.Replace(ls[3], []byte(`count(*)`), []byte(`count(1)`), 1)
			return ls
		}, ProblemEdited, 4, "", 0},
		{"add a key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`{`), []byte(`{"note":"ok",`), 1)
			return ls
		}, ProblemEdited, 2, "", 0},
		{"edit and re-hash with plain SHA-256", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[2] = rehash(t, ls[2], nil, func(r *Record) { r.Rows = 99 })
			return ls
		}, ProblemUnkeyed, 3, ProblemUnkeyed, 3},
		{"edit and re-hash with a guessed key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[2] = rehash(t, ls[2], wrongKey, func(r *Record) { r.Rows = 99 })
			return ls
		}, ProblemEdited, 3, ProblemPrevHash, 4},
		{"re-chain with plain SHA-256 and rewrite the head", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = rechain(t, ls, 1, nil, func(r *Record) { r.Rows = 99 })
			writeHeadFile(t, path, lastHead(t, ls))
			return ls
		}, ProblemUnkeyed, 2, ProblemUnkeyed, 2},
		{"re-chain with a guessed key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return rechain(t, ls, 1, wrongKey, func(r *Record) { r.Rows = 99 })
		}, ProblemEdited, 2, ProblemHead, 5},
		{"re-chain with a guessed key and rewrite the head unsigned", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = rechain(t, ls, 1, wrongKey, func(r *Record) { r.Rows = 99 })
			h := lastHead(t, ls)
			h.Key = KeyID(testKeys.HMAC)
			writeHeadFile(t, path, h)
			return ls
		}, ProblemEdited, 2, ProblemSignature, 0},
		{"re-chain with a guessed key and a head signed by another key", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = rechain(t, ls, 1, wrongKey, func(r *Record) { r.Rows = 99 })
			writeHeadFile(t, path, signHead(lastHead(t, ls), KeyID(testKeys.HMAC), otherKeys.Signer, time.Now()))
			return ls
		}, ProblemEdited, 2, ProblemSignature, 0},
		// Someone holding the HMAC key but not the signing key.
		{"edit and re-hash with the key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[2] = rehash(t, ls[2], testKeys.HMAC, func(r *Record) { r.Rows = 99 })
			return ls
		}, ProblemPrevHash, 4, ProblemPrevHash, 4},
		{"re-chain with the key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return rechain(t, ls, 1, testKeys.HMAC, func(r *Record) { r.Rows = 99 })
		}, ProblemHead, 5, ProblemHead, 5},
		{"re-chain with the key and a head signed by another key", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = rechain(t, ls, 1, testKeys.HMAC, func(r *Record) { r.Rows = 99 })
			writeHeadFile(t, path, signHead(lastHead(t, ls), KeyID(testKeys.HMAC), otherKeys.Signer, time.Now()))
			return ls
		}, ProblemSignature, 0, ProblemSignature, 0},
		{"replace the last record with the key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[4] = rehash(t, ls[4], testKeys.HMAC, func(r *Record) { r.Rows = 0 })
			return ls
		}, ProblemHead, 5, ProblemHead, 5},
		{"delete a middle record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return slices.Delete(ls, 2, 3)
		}, ProblemSeq, 3, ProblemSeq, 3},
		{"delete the first record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return ls[1:]
		}, ProblemSeq, 1, ProblemSeq, 1},
		{"swap two records", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[1], ls[2] = ls[2], ls[1]
			return ls
		}, ProblemSeq, 2, ProblemSeq, 2},
		{"repeat a record", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return slices.Insert(ls, 3, ls[2])
		}, ProblemSeq, 4, ProblemSeq, 4},
		{"delete and renumber with the key", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls = slices.Delete(ls, 2, 3)
			ls[2] = rehash(t, ls[2], testKeys.HMAC, func(r *Record) { r.Seq = 3 })
			return ls
		}, ProblemPrevHash, 3, ProblemPrevHash, 3},
		{"malformed line", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[3] = []byte("{\"seq\":4,\n")
			return ls
		}, ProblemMalformed, 4, ProblemMalformed, 4},
		{"blank line", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return slices.Insert(ls, 2, []byte("\n"))
		}, ProblemMalformed, 3, ProblemMalformed, 3},
		{"last line cut short", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[4] = ls[4][:len(ls[4])/2]
			return ls
		}, ProblemMalformed, 5, ProblemMalformed, 5},
		{"drop the last records", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return ls[:3]
		}, ProblemTruncated, 4, ProblemTruncated, 4},
		{"drop the last records and rewrite the head unsigned", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = ls[:3]
			h := lastHead(t, ls)
			h.Key = KeyID(testKeys.HMAC)
			writeHeadFile(t, path, h)
			return ls
		}, ProblemSignature, 0, ProblemSignature, 0},
		{"drop the last records and rewrite the head as unkeyed", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = ls[:3]
			writeHeadFile(t, path, lastHead(t, ls))
			return ls
		}, ProblemSignature, 0, ProblemSignature, 0},
		{"drop the last records and sign the head with another key", func(t *testing.T, path string, ls [][]byte) [][]byte {
			ls = ls[:3]
			writeHeadFile(t, path, signHead(lastHead(t, ls), KeyID(testKeys.HMAC), otherKeys.Signer, time.Now()))
			return ls
		}, ProblemSignature, 0, ProblemSignature, 0},
		{"truncate the whole file", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return nil
		}, ProblemTruncated, 1, ProblemTruncated, 1},
		{"truncate the whole file and delete the head", func(t *testing.T, path string, ls [][]byte) [][]byte {
			if err := os.Remove(path + ".head"); err != nil {
				t.Fatal(err)
			}
			return nil
		}, ProblemHead, 0, ProblemHead, 0},
		{"delete the head file", func(t *testing.T, path string, ls [][]byte) [][]byte {
			if err := os.Remove(path + ".head"); err != nil {
				t.Fatal(err)
			}
			return ls[:3]
		}, ProblemHead, 0, ProblemHead, 0},
		{"swap in a head signed by another key", func(t *testing.T, path string, ls [][]byte) [][]byte {
			writeHeadFile(t, path, signHead(lastHead(t, ls), KeyID(testKeys.HMAC), otherKeys.Signer, time.Now()))
			return ls
		}, ProblemSignature, 0, ProblemSignature, 0},
		{"swap in a head signed by another gateway's keys", func(t *testing.T, path string, ls [][]byte) [][]byte {
			writeHeadFile(t, path, signHead(lastHead(t, ls), KeyID(otherKeys.HMAC), otherKeys.Signer, time.Now()))
			return ls
		}, ProblemSignature, 0, ProblemSignature, 0},
		{"put back the head from three records ago", func(t *testing.T, path string, ls [][]byte) [][]byte {
			writeHeadFile(t, path, signHead(headState{Seq: 2, Hash: lastHead(t, ls[:2]).Hash}, KeyID(testKeys.HMAC), testKeys.Signer, time.Now()))
			return ls
		}, ProblemHead, 4, ProblemHead, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, path := newLog(t, 5)
			l.Close()
			lines := c.tamper(t, path, readLines(t, path))
			writeLines(t, path, lines)

			rep, err := VerifyFileWith(path, testVerify)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problem == nil || rep.Problem.Kind != c.kind || rep.Problem.Line != c.line {
				t.Fatalf("VerifyFileWith: %+v (%v), want %s at line %d", rep, rep.Problem, c.kind, c.line)
			}
			// The forged record is named by its seq too.
			if p := rep.Problem; (p.Kind == ProblemEdited || p.Kind == ProblemUnkeyed || p.Kind == ProblemPrevHash) && p.Seq != uint64(p.Line) {
				t.Errorf("the problem names seq %d at line %d", p.Seq, p.Line)
			}
			if c.line > 0 && c.kind != ProblemHead && rep.Records != c.line-1 {
				t.Errorf("records checked %d, want %d", rep.Records, c.line-1)
			}
			t.Logf("with the keys: %v", rep.Problem)

			rep, err = VerifyFileWith(path, VerifyOptions{PublicKey: testVerify.PublicKey})
			switch {
			case err != nil:
				t.Fatal(err)
			case c.pubKind == "" && !rep.OK():
				t.Errorf("with the public key only: %v, want no problem found", rep.Problem)
			case c.pubKind != "" && (rep.OK() || rep.Problem.Kind != c.pubKind || rep.Problem.Line != c.pubLine):
				t.Errorf("with the public key only: %+v (%v), want %s at line %d", rep, rep.Problem, c.pubKind, c.pubLine)
			default:
				t.Logf("with the public key only: %v", rep.Problem)
			}

			// A log that does not verify at its end or head is not
			// appended to, and is left as it was. (With log and head both
			// gone there is nothing to tell from a first start: Open
			// starts a new log, and only verification says the head is
			// missing.)
			_, headErr := os.Stat(path + ".head")
			before, _ := os.ReadFile(path)
			if (c.line >= len(lines) || c.kind == ProblemHead || c.kind == ProblemSignature) && (len(lines) > 0 || headErr == nil) {
				if l, err := OpenKeyed(path, testKeys); err == nil {
					l.Close()
					t.Errorf("OpenKeyed accepted the log")
				} else {
					t.Logf("OpenKeyed: %v", err)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(before, after) {
					t.Error("OpenKeyed changed the log")
				}
			}
		})
	}
}

// TestWrongKey: a log checked with another HMAC key is reported as that,
// not as forged from its first record; a log checked with another public
// key fails on its head.
func TestWrongKey(t *testing.T) {
	_, path := newLog(t, 3)
	_, other := newKeys()
	rep, err := VerifyFileWith(path, VerifyOptions{Key: other.Key, PublicKey: testVerify.PublicKey})
	if err != nil || rep.OK() || rep.Problem.Kind != ProblemKey || !strings.Contains(rep.Problem.Message, KeyID(testKeys.HMAC)) {
		t.Errorf("another HMAC key: %+v %v", rep, err)
	}
	rep, err = VerifyFileWith(path, VerifyOptions{Key: testVerify.Key, PublicKey: other.PublicKey})
	if err != nil || rep.OK() || rep.Problem.Kind != ProblemSignature {
		t.Errorf("another public key: %+v %v", rep, err)
	}
}

// TestRollbackIsNotCaught pins the limit doc.go states: the whole log and
// its head put back as they were earlier verify, as a shorter log. Only a
// copy of the signed head kept elsewhere catches it; the head's time
// shows how old it is.
func TestRollbackIsNotCaught(t *testing.T) {
	l, path := newLog(t, 3)
	oldLog, _ := os.ReadFile(path)
	oldHead, _ := os.ReadFile(path + ".head")
	for i := 4; i <= 6; i++ {
		if err := l.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	os.WriteFile(path, oldLog, 0o600)
	os.WriteFile(path+".head", oldHead, 0o600)
	rep, err := VerifyFileWith(path, testVerify)
	if err != nil || !rep.OK() || rep.LastSeq != 3 {
		t.Errorf("rolled back: %+v %v", rep, err)
	}
}

// TestOpenChecksKeys: a log is only appended to with the keys that wrote
// it; a rotated key needs a new log.
func TestOpenChecksKeys(t *testing.T) {
	l, path := newLog(t, 2)
	l.Close()
	other, _ := newKeys()
	cases := []struct {
		name string
		keys Keys
		want string
	}{
		{"another HMAC key", Keys{HMAC: other.HMAC, Signer: testKeys.Signer}, "a new key needs a new log file"},
		{"another signing key", Keys{HMAC: testKeys.HMAC, Signer: other.Signer}, "not signed by the configured signing key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadFile(path + ".head")
			if l, err := OpenKeyed(path, c.keys); err == nil || !strings.Contains(err.Error(), c.want) {
				if l != nil {
					l.Close()
				}
				t.Errorf("OpenKeyed: %v, want %q", err, c.want)
			}
			if after, _ := os.ReadFile(path + ".head"); !bytes.Equal(before, after) {
				t.Error("the refused open rewrote the head")
			}
		})
	}
	if l, err := Open(path); err == nil || !strings.Contains(err.Error(), "keyed log") {
		if l != nil {
			l.Close()
		}
		t.Errorf("Open (unkeyed) of a keyed log: %v", err)
	}
}

// TestCloseSignsHead: Close signs the head again with the time it closed.
func TestCloseSignsHead(t *testing.T) {
	l, path := newLog(t, 2)
	rep, _ := VerifyFileWith(path, testVerify)
	time.Sleep(10 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := VerifyFileWith(path, testVerify)
	if err != nil || !after.OK() || !after.HeadTime.After(rep.HeadTime) || after.HeadSeq != 2 {
		t.Errorf("after Close: %+v (before: %v)", after, rep.HeadTime)
	}
}

// oldHeadFile is a head file as the first version wrote it: two 128-byte
// slots with seq, hash and a checksum of those alone.
func oldHeadFile(seq uint64, hash string) []byte {
	slot := bytes.Repeat([]byte{' '}, oldSlotSize)
	copy(slot, fmt.Sprintf(`{"seq":%d,"hash":%q,"sum":%q}`, seq, hash, oldHeadSum(headState{Seq: seq, Hash: hash})))
	slot[oldSlotSize-1] = '\n'
	empty := bytes.Repeat([]byte{' '}, oldSlotSize)
	copy(empty, fmt.Sprintf(`{"seq":0,"hash":"","sum":%q}`, oldHeadSum(headState{})))
	empty[oldSlotSize-1] = '\n'
	if seq%2 == 0 {
		return append(slot, empty...)
	}
	return append(empty, slot...)
}

// TestUnkeyed: a log from before keyed chains (plain SHA-256, an unsigned
// head of the first version's size) still verifies as a chain, but is
// reported as unkeyed, never as intact, when the caller verifies with
// keys; a keyed gateway refuses to append to it.
func TestUnkeyed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := l.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	seq, hash := l.Head()
	l.Close()
	if err := os.WriteFile(path+".head", oldHeadFile(seq, hash), 0o600); err != nil {
		t.Fatal(err)
	}

	rep, err := VerifyFile(path)
	if err != nil || !rep.OK() || rep.Keyed || !rep.HashesChecked || rep.HeadSigned || rep.Records != 3 || rep.HeadSeq != 3 {
		t.Fatalf("VerifyFile: %+v %v", rep, err)
	}
	for _, o := range []VerifyOptions{testVerify, {PublicKey: testVerify.PublicKey}, {Key: testVerify.Key}} {
		rep, err := VerifyFileWith(path, o)
		if err != nil || rep.OK() || rep.Problem.Kind != ProblemUnkeyed || !strings.Contains(rep.Problem.Message, "3 record(s)") ||
			!strings.Contains(rep.Problem.Message, "proves nothing") {
			t.Errorf("VerifyFileWith(key %v, public key %v): %+v %v", o.Key != nil, o.PublicKey != nil, rep, err)
		}
	}
	// The unkeyed chain still catches an edit.
	lines := readLines(t, path)
	edited := slices.Clone(lines)
	edited[1] = bytes.Replace(edited[1], []byte(`"rows":2`), []byte(`"rows":7`), 1)
	writeLines(t, path, edited)
	if rep, _ := VerifyFileWith(path, testVerify); rep.OK() || rep.Problem.Kind != ProblemEdited || rep.Problem.Line != 2 {
		t.Errorf("an edited unkeyed log: %+v", rep)
	}
	writeLines(t, path, lines)

	if l, err := OpenKeyed(path, testKeys); err == nil || !strings.Contains(err.Error(), "unsigned") {
		if l != nil {
			l.Close()
		}
		t.Errorf("OpenKeyed of an unkeyed log: %v", err)
	}
	os.Remove(path + ".head")
	if l, err := OpenKeyed(path, testKeys); err == nil || !strings.Contains(err.Error(), "unkeyed log") {
		if l != nil {
			l.Close()
		}
		t.Errorf("OpenKeyed of an unkeyed log without its head: %v", err)
	}
	// The unkeyed writer resumes a first-version head, rewriting it in
	// the current size.
	os.WriteFile(path+".head", oldHeadFile(seq, hash), 0o600)
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(context.Background(), record(4))
	l.Close()
	if b, _ := os.ReadFile(path + ".head"); len(b) != headSize {
		t.Errorf("head file is %d bytes, want %d", len(b), headSize)
	}
	if rep, err := VerifyFile(path); err != nil || !rep.OK() || rep.HeadSeq != 4 {
		t.Errorf("after resuming: %+v %v", rep, err)
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
			_, err := OpenKeyed(path, testKeys)
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
// record with the head's hash; a head further behind is not what a crash
// leaves, and is refused.
func TestHeadBehind(t *testing.T) {
	l, path := newLog(t, 2)
	oldHead, err := os.ReadFile(path + ".head")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record(3)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.WriteFile(path+".head", oldHead, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyFileWith(path, testVerify)
	if err != nil || !rep.OK() || rep.HeadSeq != 2 || rep.LastSeq != 3 {
		t.Fatalf("VerifyFileWith: %+v %v", rep, err)
	}
	l, err = OpenKeyed(path, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record(4)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := VerifyFileWith(path, testVerify); err != nil || !rep.OK() || rep.HeadSeq != 4 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}

	// Two records behind: refused.
	if err := os.WriteFile(path+".head", oldHead, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, _ := VerifyFileWith(path, testVerify); rep.OK() || rep.Problem.Kind != ProblemHead || rep.Problem.Line != 4 {
		t.Errorf("two behind: VerifyFileWith: %+v", rep)
	}
	if _, err := OpenKeyed(path, testKeys); err == nil || !strings.Contains(err.Error(), "older head file") {
		t.Errorf("two behind: OpenKeyed: %v", err)
	}

	// A head one behind the log that does not match it is refused.
	bad := signHead(headState{Seq: 3, Hash: strings.Repeat("ab", 32)}, KeyID(testKeys.HMAC), testKeys.Signer, time.Now())
	writeHeadFile(t, path, bad)
	if rep, _ := VerifyFileWith(path, testVerify); rep.OK() || rep.Problem.Kind != ProblemHead || rep.Problem.Line != 3 {
		t.Errorf("VerifyFileWith: %+v", rep)
	}
	if _, err := OpenKeyed(path, testKeys); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("OpenKeyed: %v, want a refusal at line 3", err)
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
	rep, err := VerifyFileWith(path, testVerify)
	if err != nil || !rep.OK() || rep.HeadSeq != 4 {
		t.Fatalf("VerifyFileWith: %+v %v", rep, err)
	}
	l, err = OpenKeyed(path, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record(6)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := VerifyFileWith(path, testVerify); err != nil || !rep.OK() || rep.HeadSeq != 6 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
	// Both slots spoilt: refused.
	copy(b[20:], "0000000000")
	if err := os.WriteFile(path+".head", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, _ := VerifyFileWith(path, testVerify); rep.OK() || rep.Problem.Kind != ProblemHead {
		t.Errorf("VerifyFileWith: %+v", rep)
	}
	if _, err := OpenKeyed(path, testKeys); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("OpenKeyed: %v", err)
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
	fine := filepath.Join(dir, "fine.jsonl")
	cases := []struct {
		name, path string
		keys       Keys
		want       string
	}{
		{"no path", "", testKeys, "no log file"},
		{"directory is a file", filepath.Join(notDir, "audit.jsonl"), testKeys, "not a directory"},
		{"in use", held, testKeys, "in use"},
		{"corrupt head", corruptHead, testKeys, "corrupt"},
		{"short HMAC key", fine, Keys{HMAC: []byte("short"), Signer: testKeys.Signer}, "5 bytes"},
		{"no HMAC key", fine, Keys{Signer: testKeys.Signer}, "0 bytes"},
		{"no signing key", fine, Keys{HMAC: testKeys.HMAC}, "signing key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := OpenKeyed(c.path, c.keys)
			if err == nil {
				l.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("OpenKeyed(%q): %v, want %q", c.path, err, c.want)
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
	if rep, err := VerifyFileWith(path, testVerify); err != nil || !rep.OK() || rep.Records != 1 {
		t.Errorf("VerifyFileWith: %+v %v", rep, err)
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

// BenchmarkAppend measures one audited request end to end: encode and
// HMAC, write, fsync the log, sign the head, write and fdatasync it. Run with
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

// BenchmarkAppendParallel: appends from 16 goroutines per core (as many
// queries finish at once under load) write in order and share fsyncs
// (group commit), so this is the log's throughput under contention.
func BenchmarkAppendParallel(b *testing.B) {
	l, _ := newBenchLog(b)
	b.SetParallelism(16)
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
	line, err := encode(r, testKeys.HMAC)
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
	l, err := OpenKeyed(path, testKeys)
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
		f, err := openHead(filepath.Join(benchDir(b), "a.head"), h)
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
	l, err := OpenKeyed(path, testKeys)
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

// TestHistory: a requester's history is their own records, newest first,
// found from the log's end across chunk boundaries, without durations.
func TestHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	long := strings.Repeat("x", 300<<10) // records longer than the reader's chunk
	for i := range 30 {
		who := "alice"
		if i%3 == 0 {
			who = "bob"
		}
		sql := fmt.Sprintf("SELECT %d", i)
		if i == 10 {
			sql += " -- " + long
		}
		if i == 20 {
			sql = `SELECT '"id":"alice"'` // bob's query naming alice
			who = "bob"
		}
		rec := &Record{Door: "http", Action: "query", Requester: Requester{ID: who}, SQL: sql, Outcome: OutcomeCompleted, Rows: int64(i), DurationMS: 12.5}
		if err := l.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	got, err := History(ctx, path, "alice", 5)
	if err != nil {
		t.Fatal(err)
	}
	var sqls []string
	for _, e := range got {
		sqls = append(sqls, e.SQL)
	}
	if want := []string{"SELECT 29", "SELECT 28", "SELECT 26", "SELECT 25", "SELECT 23"}; !slices.Equal(sqls, want) {
		t.Errorf("alice's last five: %q, want %q", sqls, want)
	}
	all, err := History(ctx, path, "alice", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 19 || !strings.HasPrefix(all[len(all)-1].SQL, "SELECT 1") {
		t.Errorf("alice has %d records, the oldest %.20q", len(all), all[len(all)-1].SQL)
	}
	for _, e := range all {
		if e.SQL == "SELECT 10 -- "+long {
			goto found
		}
	}
	t.Error("the record longer than a chunk is missing")
found:
	raw, _ := json.Marshal(all)
	if strings.Contains(string(raw), "duration") || strings.Contains(string(raw), "12.5") {
		t.Errorf("the history says how long requests took: %.300s", raw)
	}
	if none, err := History(ctx, path, "carol", 10); err != nil || len(none) != 0 {
		t.Errorf("carol's history: %v %v", none, err)
	}
}

// TestHistoryReach: History reads back no further than HistoryReach from
// the log's end, whatever the requester asks for.
func TestHistoryReach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	add := func(who, sql string) {
		if err := l.Append(ctx, &Record{Door: "http", Action: "query", Requester: Requester{ID: who}, SQL: sql, Outcome: OutcomeCompleted}); err != nil {
			t.Fatal(err)
		}
	}
	add("alice", "SELECT 'long ago'")
	big := strings.Repeat("y", 1<<20)
	for range HistoryReach>>20 + 2 {
		add("bob", "SELECT '"+big+"'")
	}
	add("alice", "SELECT 'lately'")
	l.Close()
	got, err := History(ctx, path, "alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SQL != "SELECT 'lately'" {
		t.Errorf("alice's history within reach: %d entries: %+v", len(got), got)
	}
}
