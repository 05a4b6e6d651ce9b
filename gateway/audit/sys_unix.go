//go:build unix

package audit

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking advisory lock on f, released
// when f is closed.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// datasync flushes f's data (and the metadata needed to read it back) to
// the disk; for the head file, overwritten in place, that skips the
// journal commit a full fsync would make for its modification time.
func datasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}
