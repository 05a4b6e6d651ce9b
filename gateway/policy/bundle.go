package policy

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// A policy bundle: the policy directory as a gzipped tar in OPA's bundle
// layout (.manifest with a revision, the Rego modules, agreements/), served
// by a bundle server (an OPA bundle service, S3, nginx) so that every
// replica enforces the same revision. It is unpacked into a directory of
// the gateway's own and loaded from there exactly as a policy directory
// is: the same validation, the same decisions.

// maxBundleBytes bounds a bundle, packed and unpacked.
const maxBundleBytes = 64 << 20

// manifest is a bundle's .manifest, the part the gateway reads.
type manifest struct {
	Revision string `json:"revision"`
}

// unpack writes the gzipped tar r into dir (which must be empty) and
// returns its manifest. Only regular files at clean relative paths are
// written; anything else (links, absolute paths, "..") fails it.
func unpack(r io.Reader, dir string) (manifest, error) {
	var m manifest
	zr, err := gzip.NewReader(io.LimitReader(r, maxBundleBytes))
	if err != nil {
		return m, fmt.Errorf("the bundle is not gzipped: %w", err)
	}
	tr := tar.NewReader(zr)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return m, fmt.Errorf("the bundle is not a tar archive: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case h.Typeflag == tar.TypeDir:
			continue
		case h.Typeflag != tar.TypeReg:
			return m, fmt.Errorf("the bundle's %s is not a regular file", h.Name)
		case name == "" || name != strings.TrimPrefix(h.Name, "/") && name != strings.TrimPrefix(path.Clean(h.Name), "/"):
			return m, fmt.Errorf("the bundle's path %q is not a clean relative path", h.Name)
		}
		total += h.Size
		if total > maxBundleBytes {
			return m, fmt.Errorf("the bundle unpacks to more than %d MiB", maxBundleBytes>>20)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return m, fmt.Errorf("the bundle's %s: %w", name, err)
		}
		if name == ".manifest" {
			if err := json.Unmarshal(data, &m); err != nil {
				return m, fmt.Errorf("the bundle's .manifest: %w", err)
			}
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return m, err
		}
		if err := os.WriteFile(target, data, 0o600); err != nil {
			return m, err
		}
	}
}

// WriteBundle writes the policy directory dir as a bundle (gzipped tar)
// to w: the files the gateway loads (Rego modules but not tests,
// agreements, data), and a .manifest with revision ("" for the files'
// hash, the revision a policy directory has).
func WriteBundle(dir string, w io.Writer, rev string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !wanted(p, d.IsDir(), false) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("policy dir %s: %w", dir, err)
	}
	if rev == "" {
		if rev, err = revision(dir, files); err != nil {
			return "", err
		}
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	m, _ := json.Marshal(manifest{Revision: rev})
	if err := add(".manifest", m); err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		if err := add(filepath.ToSlash(rel), data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return rev, zw.Close()
}

// fetched is a bundle downloaded and unpacked.
type fetched struct {
	dir, etag, revision string
}

// fetch downloads the bundle at url (If-None-Match etag; nil, nil when it
// has not changed) and unpacks it into a new directory below parent.
func fetch(ctx context.Context, client *http.Client, url, token, etag, parent string) (*fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
	default:
		return nil, fmt.Errorf("policy bundle %s: the server answered %s", url, resp.Status)
	}
	dir, err := os.MkdirTemp(parent, "bundle-")
	if err != nil {
		return nil, err
	}
	m, err := unpack(resp.Body, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("policy bundle %s: %w", url, err)
	}
	return &fetched{dir: dir, etag: resp.Header.Get("ETag"), revision: m.Revision}, nil
}
