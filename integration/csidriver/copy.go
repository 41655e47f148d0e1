package csidriver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyTree copies the directory src to dst (which must not exist), keeping modes, owners and
// modification times, so that a restored PostgreSQL data directory keeps its 0700 and its owner.
// Regular files are reflinked where the filesystem can (btrfs, XFS with reflink) and copied
// otherwise. Sockets and named pipes are skipped: they carry no data.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(target, mode.Perm()); err != nil {
				return fmt.Errorf("while creating %s: %w", target, err)
			}
		case mode.IsRegular():
			if err := copyFile(path, target, mode.Perm()); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return fmt.Errorf("while creating the symlink %s: %w", target, err)
			}
		case mode&(fs.ModeSocket|fs.ModeNamedPipe) != 0:
			return nil
		default:
			return fmt.Errorf("cannot copy %s: unsupported file type %s", path, mode.Type())
		}
		return keepMetadata(target, info)
	})
}

func keepMetadata(target string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("while setting the owner of %s: %w", target, err)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	// chown clears setuid/setgid bits; put the mode back afterwards.
	if err := os.Chmod(target, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return fmt.Errorf("while setting the mode of %s: %w", target, err)
	}
	if !info.IsDir() {
		if err := os.Chtimes(target, info.ModTime(), info.ModTime()); err != nil {
			return fmt.Errorf("while setting the times of %s: %w", target, err)
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("while creating %s: %w", dst, err)
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return fmt.Errorf("while copying %s to %s: %w", src, dst, err)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("while closing %s: %w", dst, err)
	}
	return nil
}
