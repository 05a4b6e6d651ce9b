package audit

import (
	"bytes"
	"context"
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

// Log is an open audit log. It is safe for concurrent use; appends are
// serialised, each written with one write(2) on a file opened O_APPEND and
// fsynced before Append returns.
type Log struct {
	path string
	head string // the head file's path

	mu     sync.Mutex
	f      *os.File
	hf     *os.File // the head file
	seq    uint64   // the last record's seq, 0 when empty
	hash   string   // the last record's hash, "" when empty
	failed error    // the write failure that stopped the log
	closed bool
}

// Open opens the log at path for appending, creating its directory (0700)
// and the file (0600) when needed, and takes an exclusive lock on it (on
// Unix), so that two gateways cannot interleave two chains in one file.
//
// An existing log resumes after its last record. Open refuses a log whose
// last line is not a valid record (a write cut short, an edit), and a log
// that disagrees with its head file (records removed from the end, a
// missing head file beside a non-empty log): the error names the file and
// line, and the log is left untouched for a person to examine with
// VerifyFile. Appending to it would bury the evidence.
func Open(path string) (*Log, error) {
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
	l := &Log{path: path, head: headPath(path), f: f}
	if err := l.resume(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// resume reads the log's last record and checks it against the head file,
// then rewrites the head file.
func (l *Log) resume() error {
	last, line, err := readTail(l.f)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return fmt.Errorf("audit: %s line %d: refusing to append to a log whose last record is corrupt (%s); "+
				"it is left as it is: examine it with VerifyFile (gateway audit verify) and move it aside to start a new log",
				l.path, p.Line, p.Message)
		}
		return fmt.Errorf("audit: %s: %w", l.path, err)
	}
	h, err := readHead(l.head)
	switch {
	case errors.Is(err, os.ErrNotExist) && last.seq == 0:
		// a new log
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("audit: %s has records up to seq %d (line %d) but no head file %s, so records "+
			"removed from its end could not be detected; refusing to append: examine it and move both aside to start a new log",
			l.path, last.seq, line, l.head)
	case err != nil:
		return fmt.Errorf("audit: refusing to open %s: %w", l.path, err)
	case h.Seq > last.seq:
		return fmt.Errorf("audit: %s line %d: the log ends at seq %d but its head file records seq %d: %d record(s) "+
			"were removed from the end; refusing to append: examine it with VerifyFile and move it aside",
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
		rep, err := walk(l.f, func(seq uint64, hash string) {
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
	if l.hf, err = openHead(l.head); err != nil {
		return err
	}
	if err := writeHead(l.hf, headState{Seq: l.seq, Hash: l.hash}); err != nil {
		l.hf.Close()
		return err
	}
	return nil
}

// Path returns the log file's path.
func (l *Log) Path() string { return l.path }

// Head returns the last record's seq and hash (0 and "" for an empty log).
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.hash
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
	line, err := encode(rec)
	if err != nil {
		return gateway.Wrap(gateway.CodeInternal, err, "audit: record %q cannot be encoded", rec.QueryID)
	}
	if _, err := l.f.Write(line); err != nil {
		return l.fail(fmt.Errorf("audit: write %s: %w", l.path, err))
	}
	if err := l.f.Sync(); err != nil {
		return l.fail(fmt.Errorf("audit: fsync %s: %w", l.path, err))
	}
	l.seq, l.hash = rec.Seq, rec.Hash
	if err := writeHead(l.hf, headState{Seq: l.seq, Hash: l.hash}); err != nil {
		// The record is on disk, but without its head the end of the log
		// is no longer guarded: stop rather than go on unguarded.
		return l.fail(err)
	}
	return nil
}

// fail stops the log after a write failure; l.mu is held.
func (l *Log) fail(err error) error {
	l.failed = fmt.Errorf("%w (the audit log stopped at seq %d; reopen it to go on)", err, l.seq)
	return unavailable(l.failed)
}

// unavailable wraps an audit failure for the doors: no request may go on
// while the log cannot be written.
func unavailable(err error) error {
	return gateway.Wrap(gateway.CodeUnavailable, err, "the audit log cannot be written, so the request was not completed")
}

// Close closes the log; later Appends return ErrClosed. It is safe to call
// more than once.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	herr := l.hf.Close()
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
func readTail(f *os.File) (chain, int, error) {
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
	c, p := parseLine(b)
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
