package scratch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// DirPrefix starts the name of every drill's scratch directory: firedrill-drill-<target>-<id>.
const DirPrefix = "firedrill-drill-"

// tmpLockPrefix names a lock file while it is written, before it is renamed into place.
const tmpLockPrefix = ".firedrill-lock-"

// Record is the JSON in a drill's lock file: who holds it, and enough to write the drill's
// history record if it dies.
type Record struct {
	DrillID    string    `json:"drillId"`
	Target     string    `json:"target"`
	Engine     string    `json:"engine,omitempty"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"startedAt"`
	Kept       bool      `json:"kept"`
	ScratchDir string    `json:"scratchDir"`
	// Phase is the drill's current phase.
	Phase           string     `json:"phase,omitempty"`
	SnapshotID      string     `json:"snapshotId,omitempty"`
	SnapshotTakenAt *time.Time `json:"snapshotTakenAt,omitempty"`
	// FinishedAt is set when the drill returned: its caller records its result, so a sweep
	// that finds the directory (a kept copy, a failed removal) writes no record for it.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Recorded is set once a sweep wrote the interrupted record of a dead drill.
	Recorded bool `json:"recorded,omitempty"`
}

// DirName is the scratch directory name of a drill.
func DirName(target, id string) string { return DirPrefix + target + "-" + id }

// lockName is the lock file of a drill, beside its directory in the scratch root.
func lockName(target, id string) string { return "." + DirName(target, id) + ".lock" }

// nameRe splits a directory or lock file name into target and drill id (8 hex digits).
var nameRe = regexp.MustCompile(`^(\.)?` + regexp.QuoteMeta(DirPrefix) + `(.+)-([0-9a-f]{8})(\.lock)?$`)

// parseName returns the target and id of a scratch directory (lock false) or lock file (lock true).
func parseName(name string) (target, id string, lock, ok bool) {
	m := nameRe.FindStringSubmatch(name)
	if m == nil || (m[1] == ".") != (m[4] == ".lock") {
		return "", "", false, false
	}
	return m[2], m[3], m[4] == ".lock", true
}

// Lock is a drill's held lock on its scratch directory.
type Lock struct {
	mu   sync.Mutex
	f    *os.File
	path string
	rec  Record
}

// Acquire writes rec into a lock file under root and holds an flock on it until Release (or
// until the process dies: the kernel releases it, which is how a sweep tells a dead drill). The
// file is locked before it gets its name, so a sweep never sees it unlocked while its drill runs.
// Call it before creating the directory: a directory without a lock file is an orphan.
func Acquire(root string, rec Record) (*Lock, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("while creating scratch root %s: %w", root, err)
	}
	path := filepath.Join(root, lockName(rec.Target, rec.DrillID))
	f, err := os.CreateTemp(root, tmpLockPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("while creating the drill's lock file in %s: %w", root, err)
	}
	fail := func(err error) (*Lock, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(fmt.Errorf("while locking %s: %w", f.Name(), err))
	}
	l := &Lock{f: f, path: path, rec: rec}
	if err := l.write(); err != nil {
		return fail(err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fail(fmt.Errorf("lock file %s already exists: another drill has id %s", path, rec.DrillID))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fail(fmt.Errorf("while naming the drill's lock file %s: %w", path, err))
	}
	return l, nil
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Update changes the record and rewrites it in place (the lock stays on the same file).
func (l *Lock) Update(change func(*Record)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	change(&l.rec)
	return l.write()
}

func (l *Lock) write() error {
	b, err := json.MarshalIndent(l.rec, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the drill's lock record: %w", err)
	}
	b = append(b, '\n')
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("while writing the drill's lock record %s: %w", l.f.Name(), err)
	}
	if err := l.f.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("while writing the drill's lock record %s: %w", l.f.Name(), err)
	}
	return nil
}

// Release gives the lock up. With remove, the lock file goes first (while still held, so no
// sweep can take it for a dead drill's): call it so once the directory is gone.
func (l *Lock) Release(remove bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var errs []error
	if remove {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("while removing the drill's lock file: %w", err))
		}
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, err)
	}
	l.f = nil
	return errors.Join(errs...)
}

// tryLock opens and locks a lock file without waiting. held is true when a live process holds
// it. On success the caller owns the returned file (and its lock) and must close it. gone is
// true when the file was removed (its drill just finished) between the open and the lock.
func tryLock(path string) (f *os.File, held, gone bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, true, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, false, nil
		}
		return nil, false, false, fmt.Errorf("while locking %s: %w", path, err)
	}
	// The owner unlinks its file before unlocking it: a lock on an unlinked file is not a
	// dead drill's.
	var a, b syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &a) != nil || syscall.Stat(path, &b) != nil || a.Ino != b.Ino || a.Dev != b.Dev {
		f.Close()
		return nil, false, true, nil
	}
	return f, false, false, nil
}

func readRecord(path string) (Record, error) {
	var rec Record
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("while reading lock record %s: %w", path, err)
	}
	return rec, nil
}

func writeRecord(f *os.File, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}
