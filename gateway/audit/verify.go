package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Kinds of Problem.
const (
	// ProblemMalformed: a line is not a complete JSON record with seq,
	// prev_hash and a final hash member (including a last line cut short).
	ProblemMalformed = "malformed"
	// ProblemEdited: a record's hash does not match its content.
	ProblemEdited = "edited"
	// ProblemSeq: a record's seq does not follow the previous one: records
	// were deleted, inserted or reordered.
	ProblemSeq = "seq"
	// ProblemPrevHash: a record's prev_hash is not the previous record's
	// hash: a record was replaced by one with a recomputed hash, or records
	// were spliced from elsewhere.
	ProblemPrevHash = "prev_hash"
	// ProblemTruncated: the head file records more than the log holds:
	// records were removed from the end.
	ProblemTruncated = "truncated"
	// ProblemHead: the head file is missing, unreadable or disagrees with
	// the log.
	ProblemHead = "head"
)

// Report is the result of verifying a log.
type Report struct {
	// Records is the number of records that verified (those before the
	// problem, if any).
	Records  int    `json:"records"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
	// HeadSeq is the seq in the head file (VerifyFile only). It equals
	// LastSeq, or is behind it when the gateway stopped between writing a
	// record and its head; either is fine when the hashes agree.
	HeadSeq uint64 `json:"head_seq"`
	// Problem is the first problem found; nil when the log verifies.
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the log verified.
func (r Report) OK() bool { return r.Problem == nil }

// Problem is where and how a log fails to verify.
type Problem struct {
	// Line is the 1-based line of the log where the chain breaks (for a
	// truncated log, the line where the missing records should start); 0
	// when the problem is the head file alone.
	Line    int    `json:"line"`
	Kind    string `json:"kind"` // a Problem constant
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Message)
}

// Verify reads a log from r and checks its chain: every line a record
// whose hash matches its content, seq 1, 2, 3..., and prev_hash the
// previous record's hash. It stops at the first problem and reports it in
// Report.Problem; the error is for failures to read r.
//
// Verify cannot see records removed from the end; VerifyFile can.
func Verify(r io.Reader) (Report, error) {
	return walk(r, nil)
}

// VerifyFile verifies the log at path like Verify and then compares its
// end with the head file beside it (<path>.head), so that records removed
// from the end of the log are caught too.
func VerifyFile(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	head, headErr := readHead(headPath(path))
	var atHead string // the log's hash at head.Seq
	rep, err := walk(f, func(seq uint64, hash string) {
		if headErr == nil && seq == head.Seq {
			atHead = hash
		}
	})
	if err != nil || rep.Problem != nil {
		return rep, err
	}
	switch {
	case errors.Is(headErr, os.ErrNotExist):
		if rep.Records > 0 {
			rep.Problem = &Problem{Kind: ProblemHead, Message: fmt.Sprintf(
				"head file %s is missing: cannot tell whether records were removed from the end of the log", headPath(path))}
		}
		return rep, nil
	case headErr != nil:
		rep.Problem = &Problem{Kind: ProblemHead, Message: headErr.Error()}
		return rep, nil
	}
	rep.HeadSeq = head.Seq
	rep.Problem = compareHead(rep, head, atHead)
	return rep, nil
}

// compareHead checks a verified chain (rep) against the head file; atHead
// is the chain's hash at head.Seq, if it reaches it.
func compareHead(rep Report, h headState, atHead string) *Problem {
	switch {
	case h.Seq > rep.LastSeq:
		return &Problem{Line: rep.Records + 1, Kind: ProblemTruncated, Message: fmt.Sprintf(
			"the log ends at seq %d but its head file records seq %d: %d record(s) removed from the end",
			rep.LastSeq, h.Seq, h.Seq-rep.LastSeq)}
	case h.Seq == 0:
		return nil // an empty log's head; the chain itself starts at seq 1
	case atHead != h.Hash:
		return &Problem{Line: int(h.Seq - rep.FirstSeq + 1), Kind: ProblemHead, Message: fmt.Sprintf(
			"record seq %d has hash %s but the head file records %s: records at or before it were replaced",
			h.Seq, short(atHead), short(h.Hash))}
	}
	return nil
}

// chain is what verification reads from a line.
type chain struct {
	seq      uint64
	prevHash string
	hash     string
}

// parseLine checks that line (without its newline) is a record whose hash
// matches its content, and returns its chain fields; the problem, when not
// nil, has no line number yet.
func parseLine(line []byte) (chain, *Problem) {
	if len(line) == 0 || line[0] != '{' || !json.Valid(line) {
		return chain{}, &Problem{Kind: ProblemMalformed, Message: "not a JSON object"}
	}
	var c struct {
		Seq      *uint64 `json:"seq"`
		PrevHash *string `json:"prev_hash"`
		Hash     *string `json:"hash"`
	}
	if err := json.Unmarshal(line, &c); err != nil {
		return chain{}, &Problem{Kind: ProblemMalformed, Message: fmt.Sprintf("bad chain field: %v", err)}
	}
	if c.Seq == nil || c.PrevHash == nil || c.Hash == nil {
		return chain{}, &Problem{Kind: ProblemMalformed, Message: "missing seq, prev_hash or hash"}
	}
	claimed, actual, ok := lineHash(line)
	if !ok {
		return chain{}, &Problem{Kind: ProblemMalformed, Message: "does not end with a hash member of 64 hex digits"}
	}
	if claimed != *c.Hash || actual != claimed {
		return chain{}, &Problem{Kind: ProblemEdited, Message: fmt.Sprintf(
			"record seq %d was changed after it was written: its content hashes to %s, not %s",
			*c.Seq, short(actual), short(claimed))}
	}
	return chain{seq: *c.Seq, prevHash: *c.PrevHash, hash: claimed}, nil
}

// follows checks that c may come after prev (the zero chain before the
// first record).
func follows(prev, c chain) *Problem {
	want := prev.seq + 1
	switch {
	case c.seq != want && prev.seq == 0:
		return &Problem{Kind: ProblemSeq, Message: fmt.Sprintf(
			"the first record has seq %d, want 1: records before it were removed", c.seq)}
	case c.seq > want:
		return &Problem{Kind: ProblemSeq, Message: fmt.Sprintf(
			"seq %d follows seq %d: %d record(s) missing", c.seq, prev.seq, c.seq-want)}
	case c.seq != want:
		return &Problem{Kind: ProblemSeq, Message: fmt.Sprintf(
			"seq %d follows seq %d: records reordered or repeated", c.seq, prev.seq)}
	case c.prevHash != prev.hash:
		return &Problem{Kind: ProblemPrevHash, Message: fmt.Sprintf(
			"prev_hash %s is not the previous record's hash %s: a record was replaced or the log spliced",
			short(c.prevHash), short(prev.hash))}
	}
	return nil
}

// walk verifies the log in r, calling fn (if not nil) for every record
// that verifies.
func walk(r io.Reader, fn func(seq uint64, hash string)) (Report, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var rep Report
	var prev chain
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && err == io.EOF {
			return rep, nil
		}
		if err != nil && err != io.EOF {
			return rep, fmt.Errorf("audit: read line %d: %w", n, err)
		}
		if err == io.EOF {
			rep.Problem = &Problem{Line: n, Kind: ProblemMalformed,
				Message: "incomplete last record (no newline): a write was cut short or the line was edited"}
			return rep, nil
		}
		c, p := parseLine(bytes.TrimSuffix(b, []byte("\n")))
		if p == nil {
			p = follows(prev, c)
		}
		if p != nil {
			p.Line = n
			rep.Problem = p
			return rep, nil
		}
		if rep.Records == 0 {
			rep.FirstSeq = c.seq
		}
		rep.Records++
		rep.LastSeq, rep.LastHash = c.seq, c.hash
		if fn != nil {
			fn(c.seq, c.hash)
		}
		prev = c
	}
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
