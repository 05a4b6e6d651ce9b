package policy

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits after the last change before reloading,
// so an editor's save (write, rename, chmod) reloads once.
const debounce = 250 * time.Millisecond

// Watch reloads the policy whenever a file under the policy directory
// changes, until ctx is done; run it in its own goroutine. A broken file is
// logged and rejected (see Reload and LastError) and the previous policy
// stays in force. It returns nil when ctx is done, or an error if it cannot
// watch.
func (e *Engine) Watch(ctx context.Context) error {
	if b := e.cfg.Bundle; b != nil {
		// A bundle: asked for again every interval (a 304 when unchanged).
		close(e.watching)
		tick := time.NewTicker(time.Duration(b.Interval))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				_ = e.Reload(ctx) // logs and records its own failure
			}
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch: %w", err)
	}
	defer w.Close()
	if err := addDirs(w, e.cfg.Dir); err != nil {
		return fmt.Errorf("policy: watch %s: %w", e.cfg.Dir, err)
	}
	close(e.watching)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			// A new directory (a new agreement) is watched too.
			if ev.Has(fsnotify.Create) {
				_ = addDirs(w, ev.Name)
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.Warn("policy watch error", "dir", e.cfg.Dir, "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			// Reload logs and records its own failure.
			_ = e.Reload(ctx)
		}
	}
}

// addDirs watches root and every directory below it that the loader reads.
func addDirs(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a vanished or plain file: nothing to watch
		}
		if !wanted(path, true, true) {
			return filepath.SkipDir
		}
		return w.Add(path)
	})
}
