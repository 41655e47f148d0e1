package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// DirStore keeps records as files: <dir>/<target>/<seq>-<kind>-<id>.json. Appends to a target
// are serialised across processes by an flock on <dir>/<target>/.lock, written to a temporary
// file, synced, and linked into place (never over an existing record), then the directory is
// synced: a crash leaves at most a temporary file, which readers ignore.
type DirStore struct {
	dir    string
	signer *Signer
}

// NewDirStore returns a store rooted at dir that signs with signer (nil: unsigned envelopes).
func NewDirStore(dir string, signer *Signer) *DirStore { return &DirStore{dir: dir, signer: signer} }

// Dir is the store's root.
func (s *DirStore) Dir() string { return s.dir }

// Append stores r at the end of its target's chain.
func (s *DirStore) Append(ctx context.Context, r *Record) (*Stored, error) {
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	tdir := filepath.Join(s.dir, r.Target)
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating evidence directory %s: %w", tdir, err)
	}
	unlock, err := lockDir(ctx, tdir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	raws, err := s.ListRaw(ctx, r.Target)
	if err != nil {
		return nil, err
	}
	r.Seq, r.Prev = 1, ""
	if n := len(raws); n > 0 {
		r.Seq, r.Prev = raws[n-1].Seq+1, sha256Hex(raws[n-1].Bytes)
	}
	b, err := seal(r, s.signer)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(tdir, seqName(r.Seq)+"-"+r.Kind+"-"+fileID(r.ID)+".json")
	if err := writeAtomic(tdir, p, b); err != nil {
		return nil, fmt.Errorf("while writing evidence record %s: %w", p, err)
	}
	st := &Stored{Record: *r, Digest: sha256Hex(b), Path: p, Signed: s.signer != nil}
	if s.signer != nil {
		st.KeyID = s.signer.KeyID()
	}
	return st, nil
}

// lockDir takes the target's append lock, waiting for another writer (polling, so that ctx can
// cancel the wait).
func lockDir(ctx context.Context, tdir string) (func(), error) {
	p := filepath.Join(tdir, ".lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while opening evidence lock %s: %w", p, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("while locking %s: %w", p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("while waiting for evidence lock %s: %w", p, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func writeAtomic(dir, p string, b []byte) error {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A link fails where a rename would replace: a record is never overwritten.
	if err := os.Link(tmp.Name(), p); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ListRaw returns a target's stored records in sequence order.
func (s *DirStore) ListRaw(ctx context.Context, target string) ([]Raw, error) {
	if !safeName.MatchString(target) {
		return nil, fmt.Errorf("target %q is not a valid record target", target)
	}
	tdir := filepath.Join(s.dir, target)
	entries, err := os.ReadDir(tdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading evidence directory %s: %w", tdir, err)
	}
	var out []Raw
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		seq, ok := parseSeq(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(tdir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("while reading evidence record %s: %w", p, err)
		}
		out = append(out, Raw{Path: p, Seq: seq, Bytes: b})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// List returns a target's records, oldest first.
func (s *DirStore) List(ctx context.Context, target string) ([]Stored, error) {
	raws, err := s.ListRaw(ctx, target)
	if err != nil {
		return nil, err
	}
	return decodeAll(raws)
}

// Targets lists the directories that hold records.
func (s *DirStore) Targets(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("while reading evidence directory %s: %w", s.dir, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || !safeName.MatchString(e.Name()) {
			continue
		}
		raws, err := s.ListRaw(ctx, e.Name())
		if err != nil {
			return nil, err
		}
		if len(raws) > 0 {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
