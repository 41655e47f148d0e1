package csidriver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// On btrfs the driver keeps every volume and snapshot in a subvolume of its own: a snapshot is a
// read-only btrfs snapshot of the volume's subvolume, taken atomically by the kernel (the
// crash-consistent snapshot a real CSI driver gives), and a volume from a snapshot is a writable
// snapshot of it. Elsewhere volumes are directories and snapshots are copies (reflinked where the
// filesystem can), which is not atomic: a crash-consistent snapshot of a database being written
// needs btrfs. The harness of the e2e cluster mounts a btrfs image for the driver's root.

// onBtrfs reports whether dir is on btrfs and the btrfs tool is there.
func onBtrfs(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.BTRFS_SUPER_MAGIC {
		return false
	}
	_, err := exec.LookPath("btrfs")
	return err == nil
}

func btrfs(args ...string) error {
	out, err := exec.Command("btrfs", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("btrfs %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newEmptyVolume creates an empty, world-writable volume at dir (like the upstream hostpath
// driver: pods run as any user).
func (d *Driver) newEmptyVolume(dir string) error {
	if d.subvolumes {
		if err := btrfs("subvolume", "create", dir); err != nil {
			return err
		}
	} else if err := os.Mkdir(dir, 0o777); err != nil {
		return err
	}
	return os.Chmod(dir, 0o777) // past the umask
}

// cloneTree makes dst a copy of src: an atomic btrfs snapshot (read-only for snapshots) on
// btrfs, a file copy elsewhere.
func (d *Driver) cloneTree(src, dst string, readOnly bool) error {
	if d.subvolumes && isSubvolume(src) {
		args := []string{"subvolume", "snapshot"}
		if readOnly {
			args = append(args, "-r")
		}
		return btrfs(append(args, src, dst)...)
	}
	return copyTree(src, dst)
}

// removeTree removes a volume or snapshot, a subvolume or a directory.
func (d *Driver) removeTree(dir string) error {
	if d.subvolumes && isSubvolume(dir) {
		err := btrfs("subvolume", "delete", dir)
		if _, statErr := os.Lstat(dir); errors.Is(statErr, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return os.RemoveAll(dir)
}

// isSubvolume: on btrfs a subvolume's root directory has inode number 256.
func isSubvolume(dir string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false
	}
	return st.Ino == 256
}
