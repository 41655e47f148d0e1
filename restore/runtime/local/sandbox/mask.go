package sandbox

import (
	"path/filepath"
	"sort"

	"github.com/firedrill/firedrill/restore/paths"
)

// MaskPlan decides what to cover so that no production path can be seen from inside.
//
// exposed are the host trees the sandbox shows (read-only system trees, the writable scratch);
// needed are paths the program must still reach (the server's binaries, the scratch
// directory); production are the paths that belong to production (data directory, tablespaces,
// WAL archive, socket directory, snapshot repository, ...), all absolute and clean.
//
// A production path outside every exposed tree is invisible already: the sandbox's root is
// empty but for what is bound into it. One inside an exposed tree is covered whole (masks),
// unless it holds something needed: then each of its entries that is not on the way to a
// needed path is covered instead (readDir lists a host directory). A production path that is
// an exposed tree (say "/usr") cannot be covered without hiding the server's
// own files: it is returned in uncovered, for the isolation record to say so. One that only
// contains exposed trees shows nothing of its own.
func MaskPlan(exposed, needed, production []string, readDir func(string) ([]string, error)) (masks, uncovered []string) {
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			masks = append(masks, p)
		}
	}
	var cover func(p string)
	cover = func(p string) {
		holdsNeeded := false
		for _, n := range needed {
			if paths.Within(p, n) {
				return // p is needed, or inside a needed tree (the scratch copy): leave it
			}
			if paths.Within(n, p) {
				holdsNeeded = true
			}
		}
		if !holdsNeeded {
			add(p)
			return
		}
		entries, err := readDir(p)
		if err != nil {
			uncovered = append(uncovered, p)
			return
		}
		for _, e := range entries {
			cover(filepath.Join(p, e))
		}
	}
	for _, raw := range production {
		if raw == "" || !filepath.IsAbs(raw) {
			continue
		}
		p := filepath.Clean(raw)
		equal, inside := false, false
		for _, t := range exposed {
			switch {
			case p == t:
				equal = true
			case paths.Within(p, t):
				inside = true
			}
		}
		switch {
		case equal:
			// A whole exposed tree (dataDir: /usr): covering it would hide the server's own
			// files. A production path that merely contains exposed trees ("/var/lib" above a
			// scratch directory) shows nothing of its own: only those trees are bound.
			uncovered = append(uncovered, p)
		case inside:
			cover(p)
		}
	}
	sort.Strings(masks)
	// A mask inside another mask is hidden by it already.
	out := masks[:0]
	for _, m := range masks {
		if len(out) > 0 && paths.Within(m, out[len(out)-1]) {
			continue
		}
		out = append(out, m)
	}
	sort.Strings(uncovered)
	return out, compactStrings(uncovered)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
