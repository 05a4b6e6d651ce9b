package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// The head file, <log>.head, records the log's last seq and hash, so that
// records removed from the end of the log (which leave a valid, shorter
// chain) are caught.
//
// It is not rewritten with a temporary file, fsync and rename after each
// append. That was the first version, and on ext4 it cost 0.4 to 1.3 ms
// per append (creating and renaming a file commits the journal), against
// 0.2 ms for the log's own write and fsync and 0.16 ms for the in-place
// write below (BenchmarkHead): it made every audited request two to six
// times slower. Instead the file has two fixed 128-byte slots, each one
// JSON line padded with spaces:
//
//	{"seq":41,"hash":"<64 hex>","sum":"<crc32 of seq:hash, 8 hex>"}
//
// Record n's head goes into slot n%2, written in place and fdatasynced (no
// size or name changes, so no journal commit). A write torn by a crash can
// only spoil the slot being written, which its checksum exposes; the other
// slot still holds the previous head. The head is the valid slot with the
// higher seq. After a crash the head may be one record (or, if the log was
// synced and the head was not, more) behind the log; Open and VerifyFile
// accept that when the log's hash at the head's seq matches. A head ahead
// of the log is what removing records from its end looks like.

const (
	slotSize = 128
	headSize = 2 * slotSize
)

type headState struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

type headSlot struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	Sum  string `json:"sum"`
}

func headPath(log string) string { return log + ".head" }

func headSum(h headState) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE(fmt.Appendf(nil, "%d:%s", h.Seq, h.Hash)))
}

func encodeSlot(h headState) []byte {
	b, _ := json.Marshal(headSlot{Seq: h.Seq, Hash: h.Hash, Sum: headSum(h)}) // cannot fail
	slot := bytes.Repeat([]byte{' '}, slotSize)
	copy(slot, b)
	slot[slotSize-1] = '\n'
	return slot
}

func decodeSlot(b []byte) (headState, bool) {
	var s headSlot
	if err := json.Unmarshal(bytes.TrimRight(b, " \n"), &s); err != nil {
		return headState{}, false
	}
	h := headState{Seq: s.Seq, Hash: s.Hash}
	if s.Sum != headSum(h) || (h.Seq == 0) != (h.Hash == "") || (h.Hash != "" && len(h.Hash) != hashLen) {
		return headState{}, false
	}
	return h, true
}

// readHead returns the head recorded in the file at path; the error wraps
// os.ErrNotExist when there is no head file.
func readHead(path string) (headState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return headState{}, err
		}
		return headState{}, fmt.Errorf("head file: %w", err)
	}
	if len(b) == 0 {
		// created, but the gateway stopped before its first write
		return headState{}, fmt.Errorf("head file %s is empty: %w", path, os.ErrNotExist)
	}
	if len(b) != headSize {
		return headState{}, fmt.Errorf("head file %s is corrupt: %d bytes, want %d", path, len(b), headSize)
	}
	h0, ok0 := decodeSlot(b[:slotSize])
	h1, ok1 := decodeSlot(b[slotSize:])
	switch {
	case ok0 && ok1 && h1.Seq > h0.Seq, !ok0 && ok1:
		return h1, nil
	case ok0:
		return h0, nil
	}
	return headState{}, fmt.Errorf("head file %s is corrupt: neither slot is valid", path)
}

// openHead opens the head file for writing, creating it (0600) with both
// slots empty when it does not exist.
func openHead(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: head file: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() == 0 {
		empty := encodeSlot(headState{})
		if _, err = f.WriteAt(append(empty, empty...), 0); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: head file %s: %w", path, err)
	}
	return f, nil
}

// writeHead writes h into its slot of the head file f and syncs it.
func writeHead(f *os.File, h headState) error {
	_, err := f.WriteAt(encodeSlot(h), int64(h.Seq%2)*slotSize)
	if err == nil {
		err = datasync(f)
	}
	if err != nil {
		return fmt.Errorf("audit: head file %s: %w", f.Name(), err)
	}
	return nil
}
