package policy

import (
	"fmt"
	"path/filepath"

	"github.com/firedrill/firedrill/restore/paths"
)

// Paths that must not overlap, compared after cleaning and resolving symlinks where they exist:
//   - two targets' snapshot repositories (a drill of one would restore the other's snapshots);
//   - a repository and any data directory (a snapshot would copy the repository into itself,
//     or the repository's housekeeping would reach into a live data directory);
//   - a repository and a WAL archive directory (audit.wal.archive), either inside the other;
//   - a scratch directory inside a data directory or a repository (drills would write copies of
//     production into production's data directory, or into the repository as stray folders).
// Scratch directories may be shared: each drill works in a subdirectory of its own.

// localPath is one configured directory, where it is in the file, and where it really is.
type localPath struct {
	target int
	key    string
	path   string
	real   string
}

func (l localPath) describe(c *Config, line int) string {
	s := fmt.Sprintf("%s of target %s (%s, line %d)", l.path, c.Targets[l.target].Name, l.key, line)
	if l.real != filepath.Clean(l.path) {
		s = fmt.Sprintf("%s, which resolves to %s, of target %s (%s, line %d)", l.path, l.real, c.Targets[l.target].Name, l.key, line)
	}
	return s
}

func validatePaths(c *Config, add addFunc, lineOf func(key string) int) {
	var repos, data, scratch, archives []localPath
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d]", i)
		if dir, ok := c.WALArchiveDir(t); ok && dir != "" {
			archives = append(archives, localPath{i, p + ".audit.wal.archive", dir, paths.Real(dir)})
		}
		if t.Snapshot.Driver == "local" {
			if r := t.Snapshot.Local.Repository; r != "" {
				repos = append(repos, localPath{i, p + ".snapshot.local.repository", r, paths.Real(r)})
			}
			if d := t.Snapshot.Local.DataDir; d != "" {
				data = append(data, localPath{i, p + ".snapshot.local.dataDir", d, paths.Real(d)})
			}
		}
		// The local and docker runtimes both make their scratch copies in restore.local.scratchDir.
		if (t.Restore.Runtime == "local" || t.Restore.Runtime == "docker") && t.Restore.Local.ScratchDir != "" {
			s := t.Restore.Local.ScratchDir
			scratch = append(scratch, localPath{i, p + ".restore.local.scratchDir", s, paths.Real(s)})
		}
	}
	for j, b := range repos {
		for _, a := range repos[:j] {
			switch {
			case a.real == b.real:
				add(b.key, "the same directory as the repository %s: each target needs a repository of its own (a drill restores the newest snapshot in its repository)", a.describe(c, lineOf(a.key)))
			case paths.Within(b.real, a.real):
				add(b.key, "inside the repository %s: each target needs a repository of its own, and neither inside the other", a.describe(c, lineOf(a.key)))
			case paths.Within(a.real, b.real):
				add(b.key, "contains the repository %s: each target needs a repository of its own, and neither inside the other", a.describe(c, lineOf(a.key)))
			}
		}
	}
	for _, r := range repos {
		for _, d := range data {
			switch {
			case paths.Within(r.real, d.real):
				add(r.key, "inside the data directory %s: a snapshot would copy the repository into itself; keep snapshots outside every data directory", d.describe(c, lineOf(d.key)))
			case paths.Within(d.real, r.real):
				add(r.key, "contains the data directory %s: keep snapshots and live data directories apart", d.describe(c, lineOf(d.key)))
			}
		}
	}
	for _, r := range repos {
		for _, a := range archives {
			switch {
			case paths.Within(r.real, a.real):
				add(r.key, "inside the WAL archive %s: archive cleanup would reach the snapshots; keep them apart", a.describe(c, lineOf(a.key)))
			case paths.Within(a.real, r.real):
				add(r.key, "contains the WAL archive %s: its files would sit among the snapshots; keep them apart", a.describe(c, lineOf(a.key)))
			}
		}
	}
	for _, s := range scratch {
		for _, d := range data {
			if paths.Within(s.real, d.real) {
				add(s.key, "inside the data directory %s: drills would write copies of the database into a live data directory", d.describe(c, lineOf(d.key)))
			}
		}
		for _, r := range repos {
			if paths.Within(s.real, r.real) {
				add(s.key, "inside the repository %s: drills' scratch copies would sit among its snapshots", r.describe(c, lineOf(r.key)))
			}
		}
	}
}
