// Package fsize measures backups on disk for the backup sources.
package fsize

import (
	"io/fs"
	"path/filepath"
)

// Tree is the total size of the regular files under dir; what cannot be read counts as nothing
// (a size is an estimate for listings, not a check).
func Tree(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
