package dump

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// untar unpacks a tar of a directory dump (decompressed as it streams) into dst and returns
// the directory that holds its toc.dat: dst itself, or the one directory the tar was made
// of. Only regular files and directories are unpacked, none outside dst. A tar that ends
// early or holds no toc.dat is ErrCorrupt, naming the file; a failed write is not.
func untar(ctx context.Context, src string, f Format, dst string) (string, error) {
	in, err := open(src, f)
	if err != nil {
		return "", err
	}
	defer in.Close()
	name := filepath.Base(src)
	tail := &zeroTail{}
	tr := tar.NewReader(io.TeeReader(ctxReader{ctx, in}, tail))
	if err := os.Mkdir(dst, 0o700); err != nil {
		return "", fmt.Errorf("while unpacking %s: %w", name, err)
	}
	var tocs []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			// A whole tar ends with two zero blocks; the reader also stops, silently, where a
			// cut one does.
			if _, err := io.Copy(io.Discard, io.TeeReader(ctxReader{ctx, in}, tail)); err != nil {
				return "", corruptTar(ctx, name, err)
			}
			if !tail.zero() {
				return "", fmt.Errorf("%w: the tar %s ends before its end-of-archive blocks: it was cut short", ErrCorrupt, name)
			}
			break
		}
		if err != nil {
			return "", corruptTar(ctx, name, err)
		}
		rel := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if rel == "." {
			continue
		}
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("%w: %s holds %q, a path outside the dump's directory", ErrCorrupt, name, h.Name)
		}
		p := filepath.Join(dst, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return "", fmt.Errorf("while unpacking %s: %w", name, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return "", fmt.Errorf("while unpacking %s: %w", name, err)
			}
			if err := writeMember(tr, p); err != nil {
				if errors.Is(err, errWrite) {
					return "", fmt.Errorf("while unpacking %s into %s: %w", name, p, err)
				}
				return "", corruptTar(ctx, name, err)
			}
			if path.Base(rel) == "toc.dat" && strings.Count(rel, "/") <= 1 {
				tocs = append(tocs, filepath.Dir(p))
			}
		default:
			// Links, devices, fifos: a directory dump has none, and none is followed.
		}
	}
	if len(tocs) != 1 {
		return "", fmt.Errorf("%w: %s is a tar but not of one directory dump (%d toc.dat at its top or one level down)", ErrCorrupt, name, len(tocs))
	}
	return tocs[0], nil
}

// zeroTail keeps the last 1 KiB written to it.
type zeroTail struct{ buf []byte }

func (z *zeroTail) Write(p []byte) (int, error) {
	z.buf = append(z.buf, p...)
	if len(z.buf) > 64<<10 {
		z.buf = append(z.buf[:0], z.buf[len(z.buf)-1024:]...)
	}
	return len(p), nil
}

// zero reports whether the last 1 KiB (two tar blocks) were all zero bytes.
func (z *zeroTail) zero() bool {
	if len(z.buf) < 1024 {
		return false
	}
	for _, b := range z.buf[len(z.buf)-1024:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// errWrite marks a failure to write into scratch: the machine's fault, not the dump's.
var errWrite = errors.New("could not write")

func writeMember(r io.Reader, p string) error {
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	_, err = io.Copy(writerOnly{out}, r)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", errWrite, cerr)
	}
	return err
}

// writerOnly tags write errors with errWrite, so that a read error (the dump's) is told from a
// write error (scratch's).
type writerOnly struct{ f *os.File }

func (w writerOnly) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errWrite, err)
	}
	return n, err
}

func corruptTar(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: while unpacking the tar %s: %w", ErrCorrupt, name, err)
}
