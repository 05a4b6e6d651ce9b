package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarball is a gzipped tar of the headers and contents given.
func tarball(t *testing.T, entries ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := 0; i < len(entries); i += 2 {
		h := entries[i].(*tar.Header)
		data := []byte(entries[i+1].(string))
		h.Size = int64(len(data))
		if h.Typeflag == tar.TypeSymlink {
			h.Size = 0
			data = nil
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestBundleRoundTrip: the repository's policies, written as a bundle and
// unpacked, load as the directory does, with the bundle's revision.
func TestBundleRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	rev, err := WriteBundle("../../policies", &buf, "2026-12-06.1")
	if err != nil || rev != "2026-12-06.1" {
		t.Fatalf("WriteBundle: %q %v", rev, err)
	}
	dir := t.TempDir()
	m, err := unpack(&buf, dir)
	if err != nil || m.Revision != "2026-12-06.1" {
		t.Fatalf("unpack: %+v %v", m, err)
	}
	got, err := load(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := load("../../policies", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.modules) != len(want.modules) || len(got.agreements) != len(want.agreements) || got.revision != want.revision {
		t.Errorf("the unpacked bundle: %d modules, %d agreements, revision %s; the directory: %d, %d, %s",
			len(got.modules), len(got.agreements), got.revision, len(want.modules), len(want.agreements), want.revision)
	}
	if _, err := os.Stat(filepath.Join(dir, "gateway_test.rego")); err == nil {
		t.Error("the bundle carries the policy tests")
	}
}

// TestBundleUnpackRefusesEscapes: a bundle can only write regular files
// below its own directory.
func TestBundleUnpackRefusesEscapes(t *testing.T) {
	for _, c := range []struct {
		name string
		tgz  []byte
		want string
	}{
		{"parent", tarball(t, &tar.Header{Name: "../evil.rego", Typeflag: tar.TypeReg, Mode: 0o644}, "package x"), "not a clean relative path"},
		{"deep parent", tarball(t, &tar.Header{Name: "a/../../evil.rego", Typeflag: tar.TypeReg, Mode: 0o644}, "package x"), "not a clean relative path"},
		{"symlink", tarball(t, &tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, ""), "not a regular file"},
		{"not gzip", []byte("plain text"), "not gzipped"},
	} {
		dir := t.TempDir()
		_, err := unpack(bytes.NewReader(c.tgz), dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil.rego")); err == nil {
			t.Errorf("%s: a file was written outside the bundle's directory", c.name)
		}
	}
}
