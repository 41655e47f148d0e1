package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyJob copies one regular file.
type copyJob struct {
	rel string // path recorded in the manifest
	src string
	// dst is where the copy goes; empty: src is already in the snapshot (an engine's backup
	// tool wrote it), hash it in place.
	dst  string
	mode fs.FileMode
	size int64
	// optional: a missing source is not an error (files dropped while a live database is copied).
	optional bool
	// want is the expected SHA-256 (hex) when verifying a clone; empty when taking a snapshot.
	want string
}

type copyResult struct {
	rel     string
	sha256  string
	size    int64
	missing bool
	err     error
}

// copier copies files in parallel, trying copy-on-write clones first.
type copier struct {
	parallel int
	fsync    bool
	// noReflink is set once a clone fails for lack of support, to stop trying.
	noReflink atomic.Bool
	copied    atomic.Int64
	bufPool   sync.Pool
}

func newCopier(parallel int, fsync bool) *copier {
	if parallel < 1 {
		parallel = 1
	}
	c := &copier{parallel: parallel, fsync: fsync}
	c.bufPool.New = func() any { b := make([]byte, 1<<20); return &b }
	return c
}

// run copies jobs, largest first, with c.parallel workers. It returns per-file results; err is
// set for the first error that must stop the copy (a cancelled context, a full disk).
func (c *copier) run(ctx context.Context, jobs []copyJob) ([]copyResult, error) {
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].size > jobs[j].size })
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	results := make([]copyResult, len(jobs))
	var wg sync.WaitGroup
	for w := 0; w < c.parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = c.copyOne(ctx, jobs[i])
				if err := results[i].err; err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return results, err
	}
	return results, nil
}

func (c *copier) copyOne(ctx context.Context, j copyJob) copyResult {
	res := copyResult{rel: j.rel}
	if err := ctx.Err(); err != nil {
		res.err = err
		return res
	}
	if j.dst == "" {
		return c.hashOne(j)
	}
	src, err := os.Open(j.src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			res.missing = true
			if !j.optional && j.want == "" {
				res.err = fmt.Errorf("while copying %s: %w", j.rel, err)
			}
			return res
		}
		res.err = fmt.Errorf("while opening %s: %w", j.src, err)
		return res
	}
	defer src.Close()
	dst, err := os.OpenFile(j.dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, j.mode.Perm()|0o200)
	if err != nil {
		res.err = fmt.Errorf("while creating %s: %w", j.dst, err)
		return res
	}
	defer dst.Close()
	h := sha256.New()
	cloned := false
	if !c.noReflink.Load() {
		if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err == nil {
			cloned = true
		} else if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
			errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EBADF) || errors.Is(err, unix.EPERM) {
			c.noReflink.Store(true)
		}
	}
	bufp := c.bufPool.Get().(*[]byte)
	defer c.bufPool.Put(bufp)
	var n int64
	if cloned {
		// The clone shares blocks with the source; hash what was cloned.
		n, err = hashFile(j.dst, h, *bufp)
	} else {
		n, err = io.CopyBuffer(io.MultiWriter(dst, h), &progressReader{r: src, n: &c.copied}, *bufp)
	}
	if err != nil {
		res.err = fmt.Errorf("while copying %s: %w", j.rel, err)
		return res
	}
	if cloned {
		c.copied.Add(n)
	}
	if c.fsync {
		if err := dst.Sync(); err != nil {
			res.err = fmt.Errorf("while syncing %s: %w", j.dst, err)
			return res
		}
	}
	res.size = n
	res.sha256 = hex.EncodeToString(h.Sum(nil))
	return res
}

// hashOne hashes (and, with fsync, makes durable) a file already in the snapshot.
func (c *copier) hashOne(j copyJob) copyResult {
	res := copyResult{rel: j.rel}
	f, err := os.Open(j.src)
	if err != nil {
		res.err = fmt.Errorf("while opening %s: %w", j.src, err)
		return res
	}
	defer f.Close()
	bufp := c.bufPool.Get().(*[]byte)
	defer c.bufPool.Put(bufp)
	h := sha256.New()
	n, err := io.CopyBuffer(h, &progressReader{r: f, n: &c.copied}, *bufp)
	if err != nil {
		res.err = fmt.Errorf("while reading %s: %w", j.rel, err)
		return res
	}
	if c.fsync {
		if err := f.Sync(); err != nil {
			res.err = fmt.Errorf("while syncing %s: %w", j.src, err)
			return res
		}
	}
	res.size = n
	res.sha256 = hex.EncodeToString(h.Sum(nil))
	return res
}

func hashFile(path string, w io.Writer, buf []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.CopyBuffer(w, f, buf)
}

type progressReader struct {
	r io.Reader
	n *atomic.Int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// isNoSpace reports a full disk, which deserves its own hint.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
