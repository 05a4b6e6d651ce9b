package accelerate

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/councildata/gateway/gateway"
)

// A snapshot is one table's copy on the gateway's disk, so that a restart
// answers from the copy at once instead of waiting for the store. It is an
// Arrow IPC stream (zstd-compressed buffers) after an 8-byte magic and a
// mode byte; the schema's metadata says what the copy is of and how fresh
// it is (the meta* keys). The stream is cut into chunks of at most
// sealChunk bytes after a random 16-byte salt, each [uint32 length]
// [payload], each checked before a byte of it is decoded, with the
// chunk's index and a last-chunk flag bound in, so a reordered,
// truncated, extended or changed snapshot fails to open (and is read
// again from the store) rather than reaching the Arrow decoder, which
// trusts the lengths it reads. Sealed (encryption_key_file set), a
// payload is AES-256-GCM ciphertext and tag (a STREAM construction: index
// and flag in the nonce), under HKDF-SHA256 of the configured secret and
// the salt. Plain, it is the data and an HMAC-SHA256 of it under a key
// anyone can know: a check against damage, not against whoever may write
// the file (they may write the store's data too).
//
// A snapshot is written to a temporary file in the same directory, synced
// and renamed over the old one: a crash leaves the old snapshot or the new
// one, never half of one.
const (
	magic      = "CDGCOPY2"
	modePlain  = 0
	modeSealed = 1
	sealChunk  = 1 << 20
	saltSize   = 16
)

// Metadata keys of a snapshot's schema.
const (
	metaFormat    = "gateway.copy.format" // "1"
	metaSource    = "gateway.copy.source" // source id, type and table: what the copy is of
	metaTable     = "gateway.copy.table"
	metaMode      = "gateway.copy.mode"
	metaKey       = "gateway.copy.key"
	metaRefreshed = "gateway.copy.refreshed_at" // RFC 3339, nanoseconds
	metaVersion   = "gateway.copy.store_version"
	metaFiles     = "gateway.copy.files" // JSON FilesRead, for a file store
)

// snapshotMeta is what a snapshot says about itself.
type snapshotMeta struct {
	source, table, mode, key string
	refreshedAt              time.Time
	storeVersion             string
	files                    *gateway.FilesRead
}

func (m snapshotMeta) keys() ([]string, []string) {
	files := ""
	if m.files != nil {
		b, _ := json.Marshal(m.files)
		files = string(b)
	}
	return []string{metaFormat, metaSource, metaTable, metaMode, metaKey, metaRefreshed, metaVersion, metaFiles},
		[]string{"1", m.source, m.table, m.mode, m.key, m.refreshedAt.UTC().Format(time.RFC3339Nano), m.storeVersion, files}
}

func readMeta(s *arrow.Schema) (snapshotMeta, error) {
	md := s.Metadata()
	get := func(k string) string {
		if i := md.FindKey(k); i >= 0 {
			return md.Values()[i]
		}
		return ""
	}
	if get(metaFormat) != "1" {
		return snapshotMeta{}, fmt.Errorf("not a snapshot of this gateway's format (format %q)", get(metaFormat))
	}
	t, err := time.Parse(time.RFC3339Nano, get(metaRefreshed))
	if err != nil {
		return snapshotMeta{}, fmt.Errorf("refreshed_at: %w", err)
	}
	m := snapshotMeta{source: get(metaSource), table: get(metaTable), mode: get(metaMode), key: get(metaKey),
		refreshedAt: t, storeVersion: get(metaVersion)}
	if f := get(metaFiles); f != "" {
		m.files = &gateway.FilesRead{}
		if err := json.Unmarshal([]byte(f), m.files); err != nil {
			return snapshotMeta{}, fmt.Errorf("files: %w", err)
		}
	}
	return m, nil
}

// withoutMeta is the schema without the snapshot's metadata.
func withoutMeta(s *arrow.Schema) *arrow.Schema {
	return arrow.NewSchema(s.Fields(), nil)
}

// snapshotPath is where a table's snapshot lives in dir: its name made
// safe for a file name, and a hash of the exact name so two tables whose
// safe names agree do not share a file.
func snapshotPath(dir, table string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, table)
	if len(safe) > 64 {
		safe = safe[:64]
	}
	h := sha256.Sum256([]byte(table))
	return filepath.Join(dir, safe+"-"+hex.EncodeToString(h[:4])+".copy")
}

// writeSnapshot writes r's rows, with meta in the schema, as path,
// sealed with key when it is set.
func writeSnapshot(path string, key []byte, r array.RecordReader, meta snapshotMeta) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*.copy")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	mode := byte(modePlain)
	if key != nil {
		mode = modeSealed
	}
	if _, err := bw.Write(append([]byte(magic), mode)); err != nil {
		return err
	}
	seal, err := newSealer(bw, key)
	if err != nil {
		return err
	}
	k, v := meta.keys()
	md := arrow.NewMetadata(k, v)
	schema := arrow.NewSchema(r.Schema().Fields(), &md)
	w := ipc.NewWriter(seal, ipc.WithSchema(schema), ipc.WithZstd())
	for r.Next() {
		if err := w.Write(r.RecordBatch()); err != nil {
			w.Close()
			return err
		}
	}
	if err := r.Err(); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := seal.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// openSnapshot opens path for reading: its rows stream from the returned
// reader, which the caller releases, then closes with close.
func openSnapshot(path string, key []byte) (*ipc.Reader, snapshotMeta, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, snapshotMeta{}, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	head := make([]byte, len(magic)+1)
	if _, err := io.ReadFull(br, head); err != nil || string(head[:len(magic)]) != magic {
		f.Close()
		return nil, snapshotMeta{}, nil, errors.New("not a snapshot (bad header)")
	}
	switch head[len(magic)] {
	case modePlain:
		if key != nil {
			f.Close()
			return nil, snapshotMeta{}, nil, errors.New("the snapshot is not encrypted but encryption is configured; it is refused and read again from the store")
		}
	case modeSealed:
		if key == nil {
			f.Close()
			return nil, snapshotMeta{}, nil, errors.New("the snapshot is encrypted and no encryption_key_file is configured")
		}
	default:
		f.Close()
		return nil, snapshotMeta{}, nil, errors.New("not a snapshot (unknown mode)")
	}
	in, err := newOpener(br, key)
	if err != nil {
		f.Close()
		return nil, snapshotMeta{}, nil, err
	}
	r, err := ipc.NewReader(in)
	if err != nil {
		f.Close()
		return nil, snapshotMeta{}, nil, err
	}
	meta, err := readMeta(r.Schema())
	if err != nil {
		r.Release()
		f.Close()
		return nil, snapshotMeta{}, nil, err
	}
	return r, meta, func() { f.Close() }, nil
}

// codec seals and opens one chunk, bound to its index and whether it is
// the last.
type codec interface {
	seal(index uint64, last bool, p []byte) []byte
	open(index uint64, last bool, c []byte) ([]byte, error)
	overhead() int
}

// gcm is the sealed snapshots' codec.
type gcm struct{ aead cipher.AEAD }

func (g gcm) seal(i uint64, last bool, p []byte) []byte {
	return g.aead.Seal(nil, chunkNonce(i, last), p, nil)
}
func (g gcm) open(i uint64, last bool, c []byte) ([]byte, error) {
	return g.aead.Open(nil, chunkNonce(i, last), c, nil)
}
func (g gcm) overhead() int { return g.aead.Overhead() }

// checked is the plain snapshots' codec: the data, then its HMAC.
type checked struct{ key []byte }

// plainKey keys the plain snapshots' checks: public, for damage only.
const plainKey = "council-data-gateway plain snapshot check v1"

func (k checked) mac(i uint64, last bool, p []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write(chunkNonce(i, last))
	m.Write(p)
	return m.Sum(nil)
}

func (k checked) seal(i uint64, last bool, p []byte) []byte {
	return append(append([]byte{}, p...), k.mac(i, last, p)...)
}

func (k checked) open(i uint64, last bool, c []byte) ([]byte, error) {
	if len(c) < sha256.Size {
		return nil, errSealBroken
	}
	p, tag := c[:len(c)-sha256.Size], c[len(c)-sha256.Size:]
	if !hmac.Equal(tag, k.mac(i, last, p)) {
		return nil, errSealBroken
	}
	return p, nil
}

func (checked) overhead() int { return sha256.Size }

// codecFor is the codec of a snapshot with salt: sealed under secret, or
// checked when secret is nil.
func codecFor(secret, salt []byte) (codec, error) {
	if secret == nil {
		return checked{key: []byte(plainKey)}, nil
	}
	aead, err := deriveAEAD(secret, salt)
	if err != nil {
		return nil, err
	}
	return gcm{aead}, nil
}

func deriveAEAD(secret, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, secret, salt, "council-data-gateway copy snapshot v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealer cuts what is written to it into chunks and seals each.
type sealer struct {
	w     io.Writer
	c     codec
	buf   []byte
	index uint64
}

func newSealer(w io.Writer, secret []byte) (*sealer, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	c, err := codecFor(secret, salt)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(salt); err != nil {
		return nil, err
	}
	return &sealer{w: w, c: c, buf: make([]byte, 0, sealChunk)}, nil
}

// chunkNonce is the chunk's index and whether it is the last.
func chunkNonce(index uint64, last bool) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[:8], index)
	if last {
		n[11] = 1
	}
	return n
}

func (s *sealer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := sealChunk - len(s.buf)
		if room == 0 {
			if err := s.flush(false); err != nil {
				return 0, err
			}
			continue
		}
		take := min(room, len(p))
		s.buf = append(s.buf, p[:take]...)
		p = p[take:]
	}
	return n, nil
}

func (s *sealer) flush(last bool) error {
	ct := s.c.seal(s.index, last, s.buf)
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(s.buf)))
	if _, err := s.w.Write(l[:]); err != nil {
		return err
	}
	if _, err := s.w.Write(ct); err != nil {
		return err
	}
	s.index++
	s.buf = s.buf[:0]
	return nil
}

// Close writes the last chunk (possibly empty).
func (s *sealer) Close() error { return s.flush(true) }

// opener reads a chunked stream, failing on any change to it.
type opener struct {
	r     io.Reader
	c     codec
	index uint64
	plain []byte
	done  bool
}

func newOpener(r io.Reader, secret []byte) (*opener, error) {
	salt := make([]byte, saltSize)
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, errors.New("the snapshot is cut short")
	}
	c, err := codecFor(secret, salt)
	if err != nil {
		return nil, err
	}
	return &opener{r: r, c: c}, nil
}

var errSealBroken = errors.New("the snapshot does not check out (changed or damaged, or, if encrypted, under another key)")

func (o *opener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.done {
			return 0, io.EOF
		}
		var l [4]byte
		if _, err := io.ReadFull(o.r, l[:]); err != nil {
			return 0, errors.New("the snapshot is cut short (its last chunk is missing)")
		}
		n := binary.BigEndian.Uint32(l[:])
		if n > sealChunk {
			return 0, errSealBroken
		}
		ct := make([]byte, int(n)+o.c.overhead())
		if _, err := io.ReadFull(o.r, ct); err != nil {
			return 0, errors.New("the snapshot is cut short")
		}
		// A chunk opens as the last one or as a middle one, never both.
		plain, err := o.c.open(o.index, false, ct)
		if err != nil {
			if plain, err = o.c.open(o.index, true, ct); err != nil {
				return 0, errSealBroken
			}
			o.done = true
			var extra [1]byte
			if m, _ := o.r.Read(extra[:]); m > 0 {
				return 0, errSealBroken // bytes after the last chunk
			}
		}
		o.index++
		o.plain = plain
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}
