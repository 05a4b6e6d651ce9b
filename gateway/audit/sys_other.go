//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is not available; run one gateway per
// log file there.
func lockFile(*os.File) error { return nil }

func datasync(f *os.File) error { return f.Sync() }
