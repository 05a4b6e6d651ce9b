package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Kinds of Problem.
const (
	// ProblemMalformed: a line is not a complete JSON record with seq,
	// prev_hash and a final hash member (including a last line cut short).
	ProblemMalformed = "malformed"
	// ProblemEdited: a record's hash does not match its content (in a
	// keyed log: is not the HMAC of its content under the key given).
	ProblemEdited = "edited"
	// ProblemUnkeyed: in a keyed log, a record hashed with plain SHA-256,
	// as someone re-hashing the log without the key would; or, when keys
	// were given to VerifyFileWith, a log that is unkeyed throughout (the
	// format before keyed chains), which proves nothing against anyone who
	// could write the file.
	ProblemUnkeyed = "unkeyed"
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
	// ProblemSignature: the head is not signed, or its signature does not
	// verify with the public key given: the head was forged or replaced.
	ProblemSignature = "signature"
	// ProblemKey: the head names another HMAC key than the one given: the
	// log was written with another key (verify each log with its own key).
	ProblemKey = "key"
)

// VerifyOptions are the keys VerifyFileWith checks a keyed log with.
type VerifyOptions struct {
	// Key is the audit HMAC key. With it every record's hash is recomputed
	// from its content, so the first edited or forged record is named.
	// Without it a keyed log's records are only checked to link (seq and
	// prev_hash) and to end where the head says: an edit inside a record
	// that keeps its hash is not seen.
	Key []byte
	// PublicKey is the audit signing key's public half. With it the head's
	// signature is checked, so a head rewritten by someone without the
	// signing key (after dropping or re-chaining records) is caught.
	PublicKey ed25519.PublicKey
}

// Report is the result of verifying a log.
type Report struct {
	// Records is the number of records that verified (those before the
	// problem, if any).
	Records  int    `json:"records"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
	// HeadSeq is the seq in the head file (VerifyFile only). It equals
	// LastSeq, or is one behind it when the gateway stopped between writing
	// a record and its head; either is fine when the hashes agree.
	HeadSeq uint64 `json:"head_seq"`
	// Keyed says the log is keyed: HMAC-chained with a signed head. False
	// for an unkeyed log (plain SHA-256, the format before keyed chains).
	Keyed bool `json:"keyed"`
	// KeyID is the id of the HMAC key the head names (KeyID).
	KeyID string `json:"key_id,omitempty"`
	// HashesChecked says every record's hash was recomputed from its
	// content: always in an unkeyed log, in a keyed one only with the key.
	HashesChecked bool `json:"hashes_checked"`
	// HeadSigned says the head's signature was checked with the public key
	// given and holds.
	HeadSigned bool `json:"head_signed"`
	// HeadTime is when the head was signed (zero when unsigned).
	HeadTime time.Time `json:"head_time"`
	// Problem is the first problem found; nil when the log verifies.
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the log verified, as far as it was checked: see
// Keyed, HashesChecked and HeadSigned for how far that was.
func (r Report) OK() bool { return r.Problem == nil }

// Problem is where and how a log fails to verify.
type Problem struct {
	// Line is the 1-based line of the log where the chain breaks (for a
	// truncated log, the line where the missing records should start); 0
	// when the problem is the head file alone.
	Line int `json:"line"`
	// Seq is the seq the record on Line claims, when it could be read.
	Seq     uint64 `json:"seq,omitempty"`
	Kind    string `json:"kind"` // a Problem constant
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	switch {
	case p.Line == 0:
		return p.Message
	case p.Seq != 0:
		return fmt.Sprintf("line %d (seq %d): %s", p.Line, p.Seq, p.Message)
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Message)
}

// Verify reads a log from r and checks its chain: every line a record, seq
// 1, 2, 3..., and prev_hash the previous record's hash. In an unkeyed log
// (told by its first record) every hash is also recomputed; in a keyed
// log, without the key, only a record hashed with plain SHA-256 (forged
// without the key) is caught. It stops at the first problem and reports it
// in Report.Problem; the error is for failures to read r.
//
// Verify cannot see records removed from the end; VerifyFile can.
func Verify(r io.Reader) (Report, error) {
	return walk(r, lineCheck{infer: true}, nil)
}

// VerifyFile verifies the log at path with no keys: VerifyFileWith with
// zero VerifyOptions. For an unkeyed log that is a full check; for a keyed
// one it checks the links and the head's seq and hash only.
func VerifyFile(path string) (Report, error) {
	return VerifyFileWith(path, VerifyOptions{})
}

// VerifyFileWith verifies the log at path like Verify, with the HMAC key
// and the signing key's public half when given, and then compares its end
// with the head file beside it (<path>.head), so that records removed
// from the end of the log are caught too.
//
// When either key is given the caller expects a keyed log, so an unkeyed
// log is a Problem (ProblemUnkeyed) even when its chain is consistent, and
// so is a log with no head file at all.
func VerifyFileWith(path string, o VerifyOptions) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	wantKeyed := o.Key != nil || o.PublicKey != nil
	head, headErr := readHead(headPath(path))
	// Whether the log is keyed: the head says, unless there is none, or
	// the caller expects a keyed log and the head, unsigned, says unkeyed
	// (it may have been put there): then the first record tells.
	lc := lineCheck{infer: true}
	sigOK := false
	if headErr == nil && (head.Key != "" || !wantKeyed) {
		lc = lineCheck{keyed: head.Key != ""}
	}
	if headErr == nil {
		if lc.keyed && o.PublicKey != nil {
			sigOK = head.signedBy(o.PublicKey)
		}
		// Every record would look forged under the wrong key: say so
		// instead, when the head naming the key can be trusted.
		if lc.keyed && o.Key != nil && head.Key != KeyID(o.Key) && (sigOK || o.PublicKey == nil) {
			return Report{Keyed: true, KeyID: head.Key, HeadSeq: head.Seq, HeadSigned: sigOK, Problem: &Problem{Kind: ProblemKey,
				Message: fmt.Sprintf("the log was written with the HMAC key whose id is %s, but the key given has id %s: "+
					"verify each log with the key it was written with", head.Key, KeyID(o.Key))}}, nil
		}
	}
	lc.key = o.Key
	var atHead string // the log's hash at head.Seq
	rep, err := walk(f, lc, func(seq uint64, hash string) {
		if headErr == nil && seq == head.Seq {
			atHead = hash
		}
	})
	if headErr == nil {
		rep.HeadSeq, rep.KeyID, rep.HeadTime = head.Seq, head.Key, head.signedAt()
	}
	if err != nil || rep.Problem != nil {
		return rep, err
	}
	switch {
	case errors.Is(headErr, os.ErrNotExist) && (rep.Records > 0 || wantKeyed):
		msg := fmt.Sprintf("head file %s is missing: cannot tell whether records were removed from the end of the log", headPath(path))
		if wantKeyed {
			msg += ", and nothing signed vouches for it (a keyed gateway writes a signed head when it creates a log)"
		}
		rep.Problem = &Problem{Kind: ProblemHead, Message: msg}
		return rep, nil
	case errors.Is(headErr, os.ErrNotExist):
		return rep, nil // an empty unkeyed log
	case headErr != nil:
		rep.Problem = &Problem{Kind: ProblemHead, Message: headErr.Error()}
		return rep, nil
	case rep.Keyed && head.Key == "":
		rep.Problem = &Problem{Kind: ProblemSignature, Message: "the head file is unsigned and names no key, but the records are keyed: the head was replaced"}
		return rep, nil
	case rep.Keyed && o.PublicKey != nil && !sigOK:
		msg := "the head file's signature does not verify with the public key given: the head was forged, or signed by another key (is this the log's public key?)"
		if head.Sig == "" {
			msg = "the head file is not signed: it was replaced"
		}
		rep.Problem = &Problem{Kind: ProblemSignature, Message: msg}
		return rep, nil
	}
	rep.HeadSigned = sigOK
	if rep.Problem = compareHead(rep, head, atHead); rep.Problem != nil || rep.Keyed || !wantKeyed {
		return rep, nil
	}
	rep.Problem = &Problem{Kind: ProblemUnkeyed, Message: fmt.Sprintf(
		"the log is unkeyed: its %d record(s) are chained with plain SHA-256 and its head is not signed "+
			"(a log from before keyed audit chains, or one rewritten without the keys). The chain is consistent, "+
			"but anyone who could write the file could have rewritten it, so it proves nothing", rep.Records)}
	return rep, nil
}

// compareHead checks a verified chain (rep) against the head file; atHead
// is the chain's hash at head.Seq, if it reaches it.
func compareHead(rep Report, h headState, atHead string) *Problem {
	switch {
	case h.Seq > rep.LastSeq:
		return &Problem{Line: rep.Records + 1, Seq: rep.LastSeq + 1, Kind: ProblemTruncated, Message: fmt.Sprintf(
			"the log ends at seq %d but its head file records seq %d: %d record(s) removed from the end",
			rep.LastSeq, h.Seq, h.Seq-rep.LastSeq)}
	case h.Seq+1 < rep.LastSeq:
		return &Problem{Line: int(h.Seq + 2), Seq: h.Seq + 2, Kind: ProblemHead, Message: fmt.Sprintf(
			"the head file records seq %d but the log runs to seq %d; a crash leaves the head at most one record "+
				"behind, so an older head file was put back, and the records from seq %d on are vouched for by nothing",
			h.Seq, rep.LastSeq, h.Seq+2)}
	case h.Seq == 0:
		return nil // an empty log's head, or one record written before its first head
	case atHead != h.Hash:
		return &Problem{Line: int(h.Seq - rep.FirstSeq + 1), Seq: h.Seq, Kind: ProblemHead, Message: fmt.Sprintf(
			"record seq %d has hash %s but the head file records %s: records at or before it were replaced",
			h.Seq, short(atHead), short(h.Hash))}
	}
	return nil
}

// lineCheck is how records' hashes are checked.
type lineCheck struct {
	// infer: tell keyed from the first record (a hash that is not the
	// plain SHA-256 of its content), for a log with no head to say.
	infer bool
	// keyed: the log is keyed, so a plain SHA-256 hash is a forgery.
	keyed bool
	// key recomputes a keyed log's HMACs; nil: they are not recomputed.
	key []byte
}

// chain is what verification reads from a line.
type chain struct {
	seq      uint64
	prevHash string
	hash     string
}

// parseLine checks that line (without its newline) is a record whose hash
// matches its content as lc says, and returns its chain fields; the
// problem, when not nil, has no line number yet.
func parseLine(line []byte, lc lineCheck) (chain, *Problem) {
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
	seq := *c.Seq
	claimed, canon, ok := splitHash(line)
	if !ok {
		return chain{}, &Problem{Seq: seq, Kind: ProblemMalformed, Message: "does not end with a hash member of 64 hex digits"}
	}
	plain := sumOf(nil, canon)
	switch {
	case claimed != *c.Hash:
		return chain{}, &Problem{Seq: seq, Kind: ProblemEdited, Message: fmt.Sprintf(
			"record seq %d has two hash members: it was changed after it was written", seq)}
	case !lc.keyed && claimed != plain:
		return chain{}, &Problem{Seq: seq, Kind: ProblemEdited, Message: fmt.Sprintf(
			"record seq %d was changed after it was written: its content hashes to %s, not %s",
			seq, short(plain), short(claimed))}
	case lc.keyed && claimed == plain:
		return chain{}, &Problem{Seq: seq, Kind: ProblemUnkeyed, Message: fmt.Sprintf(
			"record seq %d is hashed with plain SHA-256, not with the audit key: it was written or re-hashed by someone without the key", seq)}
	case lc.keyed && lc.key != nil && claimed != sumOf(lc.key, canon):
		return chain{}, &Problem{Seq: seq, Kind: ProblemEdited, Message: fmt.Sprintf(
			"record seq %d was changed or forged after it was written: its hash is not the HMAC of its content under the audit key", seq)}
	}
	return chain{seq: seq, prevHash: *c.PrevHash, hash: claimed}, nil
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
func walk(r io.Reader, lc lineCheck, fn func(seq uint64, hash string)) (Report, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	rep := Report{Keyed: lc.keyed, HashesChecked: !lc.keyed || lc.key != nil}
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
		line := bytes.TrimSuffix(b, []byte("\n"))
		if n == 1 && lc.infer {
			if claimed, canon, ok := splitHash(line); ok && claimed != sumOf(nil, canon) {
				lc.keyed = true
				rep.Keyed, rep.HashesChecked = true, lc.key != nil
			}
		}
		c, p := parseLine(line, lc)
		if p == nil {
			if p = follows(prev, c); p != nil {
				p.Seq = c.seq
			}
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
