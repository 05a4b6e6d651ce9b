package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log is closed")

// Keys key a log.
type Keys struct {
	// HMAC keys every record's hash (HMAC-SHA256); at least 32 bytes. Keep
	// it where whoever can write the log cannot read it: with it they can
	// re-chain the log, though not sign a head for it.
	HMAC []byte
	// Signer signs the head on every append and at Close.
	Signer ed25519.PrivateKey
}

// Log is an open audit log. It is safe for concurrent use; appends are
// serialised, each written with one write(2) on a file opened O_APPEND and
// fsynced before Append returns.
type Log struct {
	path string
	head string // the head file's path

	key    []byte             // the HMAC key; nil in an unkeyed log
	keyID  string             // KeyID(key)
	signer ed25519.PrivateKey // signs the head; nil in an unkeyed log

	mu     sync.Mutex
	f      *os.File
	hf     *os.File // the head file
	seq    uint64   // the last record written's seq, 0 when empty
	hash   string   // the last record written's hash, "" when empty
	failed error    // the write failure that stopped the log
	closed bool

	// Group commit: records are written in order under mu, and one
	// Append at a time (the leader) syncs the file and writes the head
	// for every record written so far, outside mu; the others wait on
	// cond until a sync covers theirs. So concurrent requests share one
	// fsync, and none returns before its record and its head are on disk.
	cond       *sync.Cond
	syncing    bool
	syncedSeq  uint64 // the last record on disk with its head
	syncedHash string
}

// OpenKeyed opens the log at path for appending, creating its directory
// (0700) and the file (0600) when needed, and takes an exclusive lock on
// it (on Unix), so that two gateways cannot interleave two chains in one
// file. Every record's hash is an HMAC under keys.HMAC and the head is
// signed with keys.Signer; both are required.
//
// An existing log resumes after its last record. OpenKeyed refuses a log
// whose last line is not a valid record under the key (a write cut short,
// an edit), a log that disagrees with its head file (records removed from
// the end, a missing head file beside a non-empty log, a head not signed
// by keys.Signer or naming another HMAC key), and an unkeyed log: the
// error names the file and line, and the log is left untouched for a
// person to examine with VerifyFileWith. Appending to it would bury the
// evidence. A new key needs a new log file (see the README on rotation).
func OpenKeyed(path string, keys Keys) (*Log, error) {
	switch {
	case len(keys.HMAC) < 32:
		return nil, fmt.Errorf("audit: the HMAC key is %d bytes; at least 32 are needed", len(keys.HMAC))
	case len(keys.Signer) != ed25519.PrivateKeySize:
		return nil, errors.New("audit: no Ed25519 signing key for the head")
	}
	return open(path, bytes.Clone(keys.HMAC), keys.Signer)
}

// Open opens an unkeyed log at path, as OpenKeyed does: records chained
// with plain SHA-256 and an unsigned head, the format before keyed chains.
// It catches accidents (a cut write, a lost tail) but proves nothing
// against someone who can write the file: they can re-hash every record
// and rewrite the head. The gateway never uses it; it is for tests of the
// package's callers. Open refuses a keyed log.
func Open(path string) (*Log, error) {
	return open(path, nil, nil)
}

func open(path string, key []byte, signer ed25519.PrivateKey) (*Log, error) {
	if path == "" {
		return nil, errors.New("audit: no log file configured")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s is in use by another process: %w", path, err)
	}
	l := &Log{path: path, head: headPath(path), f: f, key: key, signer: signer}
	l.cond = sync.NewCond(&l.mu)
	if key != nil {
		l.keyID = KeyID(key)
	}
	if err := l.resume(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// resume checks the head file and the log's last record against each
// other, then rewrites the head file.
func (l *Log) resume() error {
	h, err := readHead(l.head)
	noHead := errors.Is(err, os.ErrNotExist)
	if err != nil && !noHead {
		return fmt.Errorf("audit: refusing to open %s: %w", l.path, err)
	}
	if !noHead && h.Seq > 0 {
		if err := l.checkHeadKeys(h); err != nil {
			return err
		}
	}
	lc := lineCheck{keyed: l.key != nil, key: l.key}
	last, line, err := readTail(l.f, lc)
	if err != nil {
		var p *Problem
		switch {
		case errors.As(err, &p) && p.Kind == ProblemUnkeyed:
			return fmt.Errorf("audit: %s is an unkeyed log (its last record, line %d, is hashed with plain SHA-256): "+
				"a keyed gateway does not append to it; it is left as it is: move it and %s aside to start a new, keyed log",
				l.path, p.Line, l.head)
		case errors.As(err, &p):
			return fmt.Errorf("audit: %s line %d: refusing to append to a log whose last record is corrupt (%s); "+
				"it is left as it is: examine it with gateway audit verify and move it aside to start a new log",
				l.path, p.Line, p.Message)
		}
		return fmt.Errorf("audit: %s: %w", l.path, err)
	}
	switch {
	case noHead && last.seq == 0:
		// a new log
	case noHead:
		return fmt.Errorf("audit: %s has records up to seq %d (line %d) but no head file %s, so records "+
			"removed from its end could not be detected; refusing to append: examine it and move both aside to start a new log",
			l.path, last.seq, line, l.head)
	case h.Seq > last.seq:
		return fmt.Errorf("audit: %s line %d: the log ends at seq %d but its head file records seq %d: %d record(s) "+
			"were removed from the end; refusing to append: examine it with gateway audit verify and move it aside",
			l.path, line+1, last.seq, h.Seq, h.Seq-last.seq)
	case h.Seq == last.seq && h.Hash != last.hash:
		return fmt.Errorf("audit: %s line %d: the last record's hash %s is not the head file's %s: the end of "+
			"the log was replaced; refusing to append", l.path, line, short(last.hash), short(h.Hash))
	case h.Seq < last.seq:
		// The gateway stopped between syncing a record and syncing its
		// head: check the chain up to the head's record before trusting
		// the log.
		if _, err := l.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("audit: %s: %w", l.path, err)
		}
		var atHead string
		rep, err := walk(l.f, lc, func(seq uint64, hash string) {
			if seq == h.Seq {
				atHead = hash
			}
		})
		if err != nil {
			return fmt.Errorf("audit: %s: %w", l.path, err)
		}
		p := rep.Problem
		if p == nil {
			p = compareHead(rep, h, atHead)
		}
		if p != nil {
			return fmt.Errorf("audit: %s: refusing to append to a log that does not verify: %w", l.path, p)
		}
	}
	l.seq, l.hash = last.seq, last.hash
	l.syncedSeq, l.syncedHash = last.seq, last.hash
	if l.hf, err = openHead(l.head, l.headAt(time.Now())); err != nil {
		return err
	}
	if err := writeHead(l.hf, l.headAt(time.Now())); err != nil {
		l.hf.Close()
		return err
	}
	return nil
}

// checkHeadKeys refuses a head (of a log with records) that this Log's
// keys did not write: unkeyed in a keyed Log or the other way round,
// naming another HMAC key, or not signed by the signing key.
func (l *Log) checkHeadKeys(h headState) error {
	switch {
	case l.key == nil && h.Key != "":
		return fmt.Errorf("audit: %s is a keyed log (HMAC key id %s): open it with its keys", l.path, h.Key)
	case l.key == nil:
		return nil
	case h.Key == "":
		return fmt.Errorf("audit: %s: its head file is unsigned: an unkeyed log (from before keyed audit chains), or a keyed "+
			"log whose head was replaced; a keyed gateway does not append to it; it is left as it is: examine it with gateway "+
			"audit verify, and move it and %s aside to start a new, keyed log", l.path, l.head)
	case h.Key != l.keyID:
		return fmt.Errorf("audit: %s was written with the HMAC key whose id is %s, but the configured key's id is %s: "+
			"a new key needs a new log file (move the log and %s aside; verify the old one with its own key)", l.path, h.Key, l.keyID, l.head)
	case !h.signedBy(l.signer.Public().(ed25519.PublicKey)):
		return fmt.Errorf("audit: %s: its head file is not signed by the configured signing key: the head was replaced, "+
			"or the signing key changed (a new key needs a new log file); refusing to append: examine it with gateway audit verify", l.path)
	}
	return nil
}

// headAt is the head for the log's current end, signed at now in a keyed
// log; l.mu is held (or the log is not shared yet).
func (l *Log) headAt(now time.Time) headState {
	h := headState{Seq: l.seq, Hash: l.hash}
	if l.signer != nil {
		h = signHead(h, l.keyID, l.signer, now)
	}
	return h
}

// Path returns the log file's path.
func (l *Log) Path() string { return l.path }

// Head returns the last record's seq and hash (0 and "" for an empty log):
// the last one on disk.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncedSeq, l.syncedHash
}

// Append writes rec as the log's next record and returns once it is on
// disk. It fills rec's DecisionID (when empty), Timestamp (now, when zero;
// always converted to UTC), Path (DecisionPath, when empty), Seq, PrevHash
// and Hash.
//
// An error means the record may not be on disk: the caller must fail the
// request and must not send its results. After a failed write, fsync or
// head update the Log refuses every later Append with that error: the
// state of the file is then unknown, and a new record after a partial line
// would corrupt the chain. Reopen the log (which checks its tail) to go on.
//
// ctx is not used to abandon the write: a request whose context was
// canceled must still be audited.
func (l *Log) Append(ctx context.Context, rec *Record) error {
	if rec == nil {
		return gateway.Errorf(gateway.CodeInternal, "audit: nil record")
	}
	if !validOutcome(rec.Outcome) {
		return gateway.Errorf(gateway.CodeInternal, "audit: record %q has outcome %q, want allowed, denied, failed or canceled",
			rec.QueryID, rec.Outcome)
	}
	if rec.DecisionID == "" {
		id, err := newUUID()
		if err != nil {
			return unavailable(fmt.Errorf("audit: decision id: %w", err))
		}
		rec.DecisionID = id
	}
	if rec.Path == "" {
		rec.Path = DecisionPath
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return unavailable(ErrClosed)
	case l.failed != nil:
		return unavailable(l.failed)
	}
	if rec.Timestamp.IsZero() {
		rec.Timestamp = time.Now()
	}
	rec.Timestamp = rec.Timestamp.UTC()
	rec.Seq, rec.PrevHash = l.seq+1, l.hash
	line, err := encode(rec, l.key)
	if err != nil {
		return gateway.Wrap(gateway.CodeInternal, err, "audit: record %q cannot be encoded", rec.QueryID)
	}
	if _, err := l.f.Write(line); err != nil {
		return l.fail(fmt.Errorf("audit: write %s: %w", l.path, err))
	}
	l.seq, l.hash = rec.Seq, rec.Hash
	return l.synced(rec.Seq)
}

// synced returns once record seq is on disk with a head that covers it:
// another Append's sync did it, or this one syncs every record written so
// far. l.mu is held, and released while this Append syncs.
func (l *Log) synced(seq uint64) error {
	for {
		switch {
		case l.syncedSeq >= seq:
			return nil
		case l.failed != nil:
			return unavailable(l.failed)
		case !l.syncing:
			return l.lead()
		}
		l.cond.Wait()
	}
}

// lead syncs the file and writes the head for the records written so far;
// l.mu is held, released during the sync, and held again on return.
func (l *Log) lead() error {
	l.syncing = true
	seq, hash, head := l.seq, l.hash, l.headAt(time.Now())
	l.mu.Unlock()
	err := l.f.Sync()
	if err != nil {
		err = fmt.Errorf("audit: fsync %s: %w", l.path, err)
	} else {
		// Without its head the end of the log is no longer guarded: a
		// failed head write stops the log rather than go on unguarded.
		err = writeHead(l.hf, head)
	}
	l.mu.Lock()
	l.syncing = false
	l.cond.Broadcast()
	if err != nil {
		return l.fail(err)
	}
	l.syncedSeq, l.syncedHash = seq, hash
	return nil
}

// Err is why the log stopped taking records (a write failed), or nil
// while it can be written.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	return nil
}

// fail stops the log after a write failure; l.mu is held.
func (l *Log) fail(err error) error {
	l.failed = fmt.Errorf("%w (the audit log stopped at seq %d; reopen it to go on)", err, l.syncedSeq)
	return unavailable(l.failed)
}

// unavailable wraps an audit failure for the doors: no request may go on
// while the log cannot be written.
func unavailable(err error) error {
	return gateway.Wrap(gateway.CodeUnavailable, err, "the audit log cannot be written, so the request was not completed")
}

// Close signs the head once more, with the time the log was closed (in a
// keyed log that has not failed), and closes the log; later Appends return
// ErrClosed. It is safe to call more than once.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	for l.syncing {
		l.cond.Wait() // the files stay open until the sync in flight ends
	}
	l.closed = true
	var herr error
	if l.signer != nil && l.failed == nil {
		herr = writeHead(l.hf, l.headAt(time.Now()))
	}
	herr = errors.Join(herr, l.hf.Close())
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", l.path, err)
	}
	if herr != nil {
		return fmt.Errorf("audit: close %s: %w", l.head, herr)
	}
	return nil
}

// The tail.

// readTail returns the chain fields of the last record in f and its line
// number; the error is a *Problem (with its line) when the last line is not
// a valid record.
func readTail(f *os.File, lc lineCheck) (chain, int, error) {
	fi, err := f.Stat()
	if err != nil {
		return chain{}, 0, err
	}
	size := fi.Size()
	if size == 0 {
		return chain{}, 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return chain{}, 0, err
	}
	end := size // end of the last line, newline excluded
	if last[0] == '\n' {
		end = size - 1
	}
	start, err := lineStart(f, end)
	if err != nil {
		return chain{}, 0, err
	}
	nl, err := countNewlines(f, start)
	if err != nil {
		return chain{}, 0, err
	}
	line := int(nl) + 1
	if last[0] != '\n' {
		return chain{}, line, &Problem{Line: line, Kind: ProblemMalformed,
			Message: "incomplete last record (no newline): a write was cut short"}
	}
	b := make([]byte, end-start)
	if _, err := f.ReadAt(b, start); err != nil {
		return chain{}, 0, err
	}
	c, p := parseLine(b, lc)
	if p != nil {
		p.Line = line
		return chain{}, line, p
	}
	return c, line, nil
}

// lineStart returns the offset just after the last newline before end, or 0.
func lineStart(f *os.File, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for pos := end; pos > 0; {
		n := int64(len(buf))
		if n > pos {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// countNewlines counts the newlines in f's first n bytes.
func countNewlines(f *os.File, n int64) (int64, error) {
	buf := make([]byte, 256<<10)
	var count int64
	r := io.NewSectionReader(f, 0, n)
	for {
		k, err := r.Read(buf)
		count += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return count, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
