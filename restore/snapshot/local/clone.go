package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/firedrill/firedrill/restore/snapshot"
)

// Clone copies snapshot id into dest (which must not exist or be empty), verifying every file
// against the manifest on the way. Mismatches are reported in the result, not as an error: a
// damaged snapshot is a finding. Parallel workers copy; status hears progress.
func (r *Repository) Clone(ctx context.Context, id, dest string, status func(string)) (*snapshot.CloneResult, error) {
	if status == nil {
		status = func(string) {}
	}
	meta, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("while cloning snapshot %s: destination %s is not empty", id, dest)
	}
	src := r.Path(id)
	res := &snapshot.CloneResult{DataDir: filepath.Join(dest, dataDir), Files: map[string][]byte{}, Links: map[string]string{}, Hashes: map[string]string{}}
	mb, err := os.ReadFile(filepath.Join(src, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("while reading the manifest of snapshot %s: %w", id, err)
	}
	if sum := sha256.Sum256(mb); hex.EncodeToString(sum[:]) != meta.ManifestSHA256 {
		res.Mismatches = append(res.Mismatches, manifestFile+": differs from the checksum recorded in the metadata")
	}
	manifest, err := readManifest(filepath.Join(src, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("while reading the manifest of snapshot %s: %w", id, err)
	}
	seen := map[string]bool{}
	var jobs []copyJob
	var total int64
	for _, top := range []string{dataDir, externalDir} {
		root := filepath.Join(src, top)
		if _, err := os.Stat(root); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("while reading snapshot %s: %w", id, err)
			}
			rel, _ := filepath.Rel(src, p)
			rel = filepath.ToSlash(rel)
			dst := filepath.Join(dest, filepath.FromSlash(rel))
			if d.IsDir() {
				return os.MkdirAll(dst, 0o700)
			}
			if !d.Type().IsRegular() {
				res.Mismatches = append(res.Mismatches, rel+": not a regular file")
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("while reading snapshot %s: %w", id, err)
			}
			want, ok := manifest[rel]
			if !ok {
				res.Mismatches = append(res.Mismatches, rel+": not in the manifest")
				want = "-"
			}
			seen[rel] = true
			jobs = append(jobs, copyJob{rel: rel, src: p, dst: dst, mode: fi.Mode(), size: fi.Size(), want: want})
			total += fi.Size()
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	cp := newCopier(r.Parallel, false)
	stop := reportProgress(ctx, cp, total, "cloning snapshot "+id, status)
	results, err := cp.run(ctx, jobs)
	stop()
	if err != nil {
		return res, copyErr("while cloning snapshot "+id, dest, err)
	}
	wants := map[string]string{}
	for _, j := range jobs {
		wants[j.rel] = j.want
	}
	for _, rr := range results {
		res.Bytes += rr.size
		switch want := wants[rr.rel]; {
		case rr.missing:
			res.Mismatches = append(res.Mismatches, rr.rel+": vanished while cloning")
		case want == "-":
		case rr.sha256 != want:
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("%s: sha256 %s, manifest says %s", rr.rel, short(rr.sha256), short(want)))
		default:
			res.Verified++
			if rel, ok := strings.CutPrefix(rr.rel, dataDir+"/"); ok {
				res.Hashes[rel] = rr.sha256
			}
		}
	}
	// The engine's files, verified too.
	entries, _ := os.ReadDir(filepath.Join(src, filesDir))
	for _, e := range entries {
		rel := filesDir + "/" + e.Name()
		b, err := os.ReadFile(filepath.Join(src, filesDir, e.Name()))
		if err != nil {
			return res, fmt.Errorf("while reading %s of snapshot %s: %w", rel, id, err)
		}
		seen[rel] = true
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != manifest[rel] {
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("%s: sha256 %s, manifest says %s", rel, short(got), short(manifest[rel])))
		} else {
			res.Verified++
		}
		res.Files[e.Name()] = b
	}
	for rel := range manifest {
		if !seen[rel] {
			res.Mismatches = append(res.Mismatches, rel+": missing from the snapshot")
		}
	}
	sort.Strings(res.Mismatches)
	// Symlinked directories point at their clones, never at production's paths.
	for _, l := range meta.Links {
		clone := filepath.Join(dest, externalDir, l.Stored)
		link := filepath.Join(res.DataDir, filepath.FromSlash(l.Path))
		if err := os.MkdirAll(clone, 0o700); err != nil {
			return res, fmt.Errorf("while restoring link %s: %w", l.Path, err)
		}
		if err := os.RemoveAll(link); err != nil {
			return res, fmt.Errorf("while restoring link %s: %w", l.Path, err)
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
			return res, fmt.Errorf("while restoring link %s: %w", l.Path, err)
		}
		if err := os.Symlink(clone, link); err != nil {
			return res, fmt.Errorf("while restoring link %s: %w", l.Path, err)
		}
		res.Links[l.Path] = clone
	}
	return res, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
