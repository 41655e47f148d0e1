// Package paths compares filesystem paths the way firedrill's safety rules need: after cleaning
// and resolving symlinks, so that a repository reached through a link is still seen to lie
// inside a data directory, and a path that does not exist yet is compared where it will be.
package paths

import (
	"path/filepath"
	"strings"
)

// Real cleans p and resolves the symlinks of its longest existing prefix: a directory that
// does not exist yet is compared where it will be created.
func Real(p string) string {
	p = filepath.Clean(p)
	var rest []string
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// Within reports whether p is dir or lies under it (both clean and absolute; every path is
// within "/").
func Within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}
