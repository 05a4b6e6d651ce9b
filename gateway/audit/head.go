package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"time"
)

// The head file, <log>.head, records the log's last seq and hash, so that
// records removed from the end of the log (which leave a valid, shorter
// chain) are caught. In a keyed log it also names the HMAC key (by KeyID)
// and carries an Ed25519 signature over all of it and the time it was
// signed, so that nobody without the signing key can write a head that
// matches a log they shortened or re-chained.
//
// The head is signed on every append, not at intervals: Ed25519 signing
// costs about 45 µs here, against about 770 µs for the whole append (the
// record's write and fsync, the head's write and fdatasync;
// BenchmarkAppend), so signing every head costs some 6% and leaves no
// stretch of newest records that only the HMAC covers. Close signs it once
// more, with the time the log was closed.
//
// It is not rewritten with a temporary file, fsync and rename after each
// append. That was the first version, and on ext4 it cost 0.4 to 1.3 ms
// per append (creating and renaming a file commits the journal), against
// 0.2 ms for the log's own write and fsync and 0.16 ms for the in-place
// write below (BenchmarkHead): it made every audited request two to six
// times slower. Instead the file has two fixed 512-byte slots, each one
// JSON line padded with spaces:
//
//	{"seq":41,"hash":"<64 hex>","key":"<key id>","time":"<RFC 3339>","sig":"<base64>","sum":"<crc32, 8 hex>"}
//
// Record n's head goes into slot n%2, written in place and fdatasynced (no
// size or name changes, so no journal commit). A write torn by a crash can
// only spoil the slot being written, which its checksum exposes; the other
// slot still holds the previous head. The head is the valid slot with the
// higher seq. The log is written and synced before its head, so after a
// crash the head is at most one record behind the log; Open and VerifyFile
// accept that when the log's hash at the head's seq matches, and refuse a
// head further behind (an old head put back after records were cut off the
// end). A head ahead of the log is what removing records from its end
// looks like.
//
// Unkeyed logs (the format before keyed chains, see Open) have the same
// slots with no key, signature or time; VerifyFile also reads the first
// version's 256-byte head files, with 128-byte slots and no time.

const (
	slotSize = 512
	headSize = 2 * slotSize

	oldSlotSize = 128 // head files before keyed chains
)

// headState is one head: the last record's seq and hash and, in a keyed
// log, the key's id, when it was signed and the signature.
type headState struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	Key  string `json:"key,omitempty"`  // KeyID of the HMAC key; "" in an unkeyed log
	Time string `json:"time,omitempty"` // RFC 3339 UTC, when it was signed
	Sig  string `json:"sig,omitempty"`  // base64 Ed25519 signature of signedBytes
}

type headSlot struct {
	headState
	Sum string `json:"sum"`
}

func headPath(log string) string { return log + ".head" }

func headSum(h headState) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE(fmt.Appendf(nil, "%d:%s:%s:%s:%s", h.Seq, h.Hash, h.Key, h.Time, h.Sig)))
}

// oldHeadSum is the first version's checksum (seq and hash only).
func oldHeadSum(h headState) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE(fmt.Appendf(nil, "%d:%s", h.Seq, h.Hash)))
}

// signedBytes is what the signature covers: a fixed prefix (so that no
// other message of any program signed by the same key reads as a head),
// seq, hash, key id and time.
func signedBytes(h headState) []byte {
	return fmt.Appendf(nil, "council-gateway audit head v1\nseq %d\nhash %s\nkey %s\ntime %s\n", h.Seq, h.Hash, h.Key, h.Time)
}

// signHead fills h's key id, time and signature.
func signHead(h headState, keyID string, signer ed25519.PrivateKey, now time.Time) headState {
	h.Key, h.Time = keyID, now.UTC().Format(time.RFC3339Nano)
	h.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(signer, signedBytes(h)))
	return h
}

// signedBy reports whether h carries a valid signature by pub.
func (h headState) signedBy(pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(h.Sig)
	return err == nil && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, signedBytes(h), sig)
}

// signedAt is the head's signing time (zero when it has none).
func (h headState) signedAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, h.Time)
	return t
}

func encodeSlot(h headState) []byte {
	b, _ := json.Marshal(headSlot{headState: h, Sum: headSum(h)}) // cannot fail
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
	h := s.headState
	sum := headSum(h)
	if len(b) == oldSlotSize {
		sum = oldHeadSum(h)
	}
	if s.Sum != sum || (h.Seq == 0) != (h.Hash == "") || (h.Hash != "" && len(h.Hash) != hashLen) {
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
	size := slotSize
	if len(b) == 2*oldSlotSize {
		size = oldSlotSize
	} else if len(b) != headSize {
		return headState{}, fmt.Errorf("head file %s is corrupt: %d bytes, want %d", path, len(b), headSize)
	}
	h0, ok0 := decodeSlot(b[:size])
	h1, ok1 := decodeSlot(b[size:])
	switch {
	case ok0 && ok1 && h1.Seq > h0.Seq, !ok0 && ok1:
		return h1, nil
	case ok0:
		return h0, nil
	}
	return headState{}, fmt.Errorf("head file %s is corrupt: neither slot is valid", path)
}

// openHead opens the head file for writing. A new file (or one of the
// first version's size) is written whole with h in both slots.
func openHead(path string, h headState) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: head file: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != headSize {
		slot := encodeSlot(h)
		if err = f.Truncate(0); err == nil {
			if _, err = f.WriteAt(append(slot, slot...), 0); err == nil {
				err = f.Sync()
			}
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
