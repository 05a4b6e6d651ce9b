package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/councildata/gateway/gateway"
)

// DecisionPath is the default Record.Path: the decision every door asks for.
const DecisionPath = "gateway/decision"

// Outcomes of a request.
const (
	OutcomeAllowed  = "allowed"  // the policy allowed it; written before any data leaves
	OutcomeDenied   = "denied"   // the policy denied it (or could not decide)
	OutcomeFailed   = "failed"   // it was allowed but failed (bad SQL, a source failed, timeout)
	OutcomeCanceled = "canceled" // the client went away
	// OutcomeCompleted closes an allowed request: its rows were sent. Rows
	// and DurationMS say how many and how long.
	OutcomeCompleted = "completed"
)

// Doors.
const (
	DoorHTTP     = "http"
	DoorFlight   = "flight"
	DoorPostgres = "postgres"
	DoorCLI      = "cli" // gateway policy explain
)

// Record is one audited request, one line of the log. Every field is always
// written (nil pointers and slices as null), in this order; the log's
// top-level keys are therefore the same on every line.
//
// Canonical form and hash: the line is the record marshalled by
// encoding/json (compact, HTML escaping off) from this struct, whose last
// field is hash. Hash is the lowercase hex HMAC-SHA256, under the log's
// audit key, of that line marshalled with Hash set to "", i.e. of the
// written line (without its newline) with the final `"hash":"<64 hex>"}`
// replaced by `"hash":""}`. (In an unkeyed log, the format before keyed
// chains, it is the plain SHA-256 of the same bytes.) Verify checks the
// bytes as written, not a re-marshalled struct, so a key added to a line, a
// changed number format or a new field in a later gateway version are all
// either caught or harmless.
type Record struct {
	// DecisionID identifies the record (a random UUID when empty).
	DecisionID string `json:"decision_id"`
	// Timestamp is when the request arrived or was decided (now when
	// zero); written in UTC, RFC 3339 with nanoseconds.
	Timestamp time.Time `json:"timestamp"`
	// Path is the policy decision asked for (DecisionPath when empty).
	Path string `json:"path"`
	// Input is the policy input document, as given to the policy; nil
	// when the request failed before one was built.
	Input *gateway.PolicyInput `json:"input"`
	// Result is the policy's decision; nil when there was none (policy
	// failed or was not reached).
	Result *gateway.Decision `json:"result"`
	// RequestedBy is the client's address (host:port) as the door saw
	// it; empty only for requests made on the command line.
	RequestedBy string `json:"requested_by"`

	QueryID string `json:"query_id"`
	Door    string `json:"door"`   // DoorHTTP, DoorFlight, DoorPostgres, DoorCLI
	Action  string `json:"action"` // "query", "explain", "catalog"
	// Requester is who asked (its roles and purposes are in Input).
	Requester Requester `json:"requester"`
	// DryRunAs, on a governance officer's dry run, is the requester the
	// policy decided for (Input.requester); Requester is the officer.
	DryRunAs *Requester `json:"dry_run_as,omitempty"`
	SQL      string     `json:"sql"`
	// Tables are the tables the query named: source.table or std.dataset.
	Tables  []string `json:"tables"`
	Purpose string   `json:"purpose"`
	CaseRef string   `json:"case_ref"`
	// Agreements are the ids of the agreements that allowed the access.
	Agreements []string `json:"agreements"`
	// Excluded are the councils of standard datasets the answer left out
	// because the policy denies them, with the policy's reasons.
	Excluded []gateway.Exclusion `json:"excluded,omitempty"`
	// Failed are the councils a partial answer left out because their
	// stores failed (partial: true).
	Failed []gateway.SourceFailure `json:"failed,omitempty"`
	// Rows is the number of rows returned.
	Rows int64 `json:"rows"`
	// DurationMS is how long the request took, in milliseconds (fractional).
	DurationMS float64 `json:"duration_ms"`
	// Outcome is one of the Outcome constants; Append refuses any other.
	Outcome string `json:"outcome"`
	// Error is the error message when the outcome is not allowed.
	Error string `json:"error"`
	// TraceID is the OpenTelemetry trace the request was part of, when
	// traces are recorded.
	TraceID string `json:"trace_id,omitempty"`
	// ErrorCode is the error's class (forbidden, timeout, source_failed,
	// ...), as the API's error.code says it.
	ErrorCode string `json:"error_code,omitempty"`

	// The chain, filled by Append.
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"` // must stay the last field
}

// Requester is the requester as recorded: who, for which organisation.
type Requester struct {
	ID           string `json:"id"`
	Organisation string `json:"organisation"`
}

// hashSuffix is how every marshalled record with an empty hash ends.
const hashSuffix = `"hash":""}`

// hashLen is the length of a hex SHA-256 (and of a hex HMAC-SHA256).
const hashLen = 2 * sha256.Size

// sumOf is a record's hash: the hex HMAC-SHA256 of its canonical form under
// key, or, in an unkeyed log (key nil), its plain SHA-256.
func sumOf(key, canon []byte) string {
	if key == nil {
		sum := sha256.Sum256(canon)
		return hex.EncodeToString(sum[:])
	}
	m := hmac.New(sha256.New, key)
	m.Write(canon)
	return hex.EncodeToString(m.Sum(nil))
}

// KeyID names an HMAC key without revealing it: the first 16 hex digits of
// the key's HMAC of a fixed text. The head file records it, so that a log
// checked with the wrong key (after a rotation, say) is reported as that
// rather than as forged from its first record.
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("council-gateway audit key id v1"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// encode sets r.Hash (keyed with key; plain SHA-256 when key is nil) and
// returns r's line, newline included. r's chain fields (Seq, PrevHash) must
// already be set; r.Hash is ignored.
func encode(r *Record, key []byte) ([]byte, error) {
	r.Hash = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable in SQL
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if !bytes.HasSuffix(line, []byte(hashSuffix)) {
		return nil, errors.New("audit: encoded record does not end with the hash field")
	}
	r.Hash = sumOf(key, line)
	out := make([]byte, 0, len(line)+hashLen+1)
	out = append(out, line[:len(line)-2]...) // up to `"hash":"`
	out = append(out, r.Hash...)
	out = append(out, '"', '}', '\n')
	return out, nil
}

// splitHash returns the hash a line (without its newline) claims in its
// final hash member and the line's canonical form (that member emptied),
// which the hash covers; ok is false when the line does not end with a
// `"hash":"<64 hex>"}` member.
func splitHash(line []byte) (claimed string, canon []byte, ok bool) {
	// ... "hash":"<64 hex>"}
	const tail = len(`"hash":"`) + hashLen + len(`"}`)
	if len(line) < tail+1 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return "", nil, false
	}
	start := len(line) - tail
	if !bytes.Equal(line[start:start+len(`"hash":"`)], []byte(`"hash":"`)) {
		return "", nil, false
	}
	claimed = string(line[len(line)-2-hashLen : len(line)-2])
	if _, err := hex.DecodeString(claimed); err != nil {
		return "", nil, false
	}
	canon = make([]byte, 0, start+len(hashSuffix))
	canon = append(canon, line[:start]...)
	canon = append(canon, hashSuffix...)
	return claimed, canon, true
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func validOutcome(o string) bool {
	switch o {
	case OutcomeAllowed, OutcomeDenied, OutcomeFailed, OutcomeCanceled, OutcomeCompleted:
		return true
	}
	return false
}
