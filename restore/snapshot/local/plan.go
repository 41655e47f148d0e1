package local

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// copyPlan is the list of files to copy out of a data directory and where each goes.
type copyPlan struct {
	jobs  []copyJob
	bytes int64
	links []snapshot.Link
	data  string // destination of the data directory
	ext   string // destination of symlinked directories
}

// dest maps a data-directory-relative path to its place in the snapshot, following links.
func (p *copyPlan) dest(rel string) string {
	mrel := p.manifestRel(rel)
	if strings.HasPrefix(mrel, externalDir+"/") {
		return filepath.Join(p.ext, filepath.FromSlash(strings.TrimPrefix(mrel, externalDir+"/")))
	}
	return filepath.Join(p.data, filepath.FromSlash(strings.TrimPrefix(mrel, dataDir+"/")))
}

// manifestRel is the path recorded in the manifest for a data-directory-relative path.
func (p *copyPlan) manifestRel(rel string) string {
	for _, l := range p.links {
		if rel == l.Path || strings.HasPrefix(rel, l.Path+"/") {
			return externalDir + "/" + l.Stored + strings.TrimPrefix(rel, l.Path)
		}
	}
	return dataDir + "/" + rel
}

// planCopy walks srcData, creating the directory tree under dstData (and dstExt for
// symlinked directories such as tablespaces or an external pg_wal) and listing the files.
func planCopy(srcData, dstData, dstExt string, rule engine.CopyRule) (*copyPlan, error) {
	p := &copyPlan{data: dstData, ext: dstExt}
	if err := p.walk(srcData, "", dstData, dataDir, rule); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *copyPlan) walk(srcRoot, relPrefix, dstRoot, manifestPrefix string, rule engine.CopyRule) error {
	return filepath.WalkDir(srcRoot, func(src string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && src != srcRoot {
				return nil // dropped while we walk a live database
			}
			return fmt.Errorf("while reading %s: %w", src, err)
		}
		sub, _ := filepath.Rel(srcRoot, src)
		sub = filepath.ToSlash(sub)
		if sub == "." {
			return os.MkdirAll(dstRoot, 0o700)
		}
		rel := path.Join(relPrefix, sub)
		dst := filepath.Join(dstRoot, filepath.FromSlash(sub))
		mrel := manifestPrefix + "/" + sub
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				return fmt.Errorf("while reading link %s: %w", src, err)
			}
			fi, err := os.Stat(src)
			if err != nil {
				return fmt.Errorf("while following link %s -> %s: %w", src, target, err)
			}
			if fi.IsDir() {
				if rule(rel, true) == engine.Skip {
					return nil
				}
				stored := strings.ReplaceAll(rel, "/", "_")
				p.links = append(p.links, snapshot.Link{Path: rel, Stored: stored, Target: target})
				resolved, err := filepath.EvalSymlinks(src)
				if err != nil {
					return fmt.Errorf("while following link %s: %w", src, err)
				}
				if rule(rel, true) == engine.SkipContents {
					return os.MkdirAll(filepath.Join(p.ext, stored), 0o700)
				}
				return p.walk(resolved, rel, filepath.Join(p.ext, stored), externalDir+"/"+stored, rule)
			}
			return p.addFile(rel, mrel, src, dst, fi)
		}
		if d.IsDir() {
			switch rule(rel, true) {
			case engine.Skip:
				return filepath.SkipDir
			case engine.SkipContents:
				if err := os.MkdirAll(dst, 0o700); err != nil {
					return fmt.Errorf("while creating %s: %w", dst, err)
				}
				return filepath.SkipDir
			}
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return fmt.Errorf("while creating %s: %w", dst, err)
			}
			return nil
		}
		if !d.Type().IsRegular() || rule(rel, false) != engine.Copy {
			return nil // sockets, fifos, excluded files
		}
		fi, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return fmt.Errorf("while reading %s: %w", src, err)
		}
		return p.addFile(rel, mrel, src, dst, fi)
	})
}

func (p *copyPlan) addFile(_, mrel, src, dst string, fi fs.FileInfo) error {
	p.jobs = append(p.jobs, copyJob{rel: mrel, src: src, dst: dst, mode: fi.Mode(), size: fi.Size(), optional: true})
	p.bytes += fi.Size()
	return nil
}
