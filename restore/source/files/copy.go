package files

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// redisAOFDir is where the Redis drill looks for a Redis 7 AOF directory in the copy
// (restore/drill/engines/redis: --appenddirname appendonlydir).
const redisAOFDir = "appendonlydir"

// Materialize copies the backup into the scratch directory's clone/data, verifying its
// checksum sidecar (when there is one) on the way: a mismatch is a Fail finding and the copy
// is marked damaged, so nothing is started on it.
func (s *Source) Materialize(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	if s.S3 != nil {
		return s.materializeS3(ctx, req)
	}
	meta := req.Snapshot
	src := filepath.Join(s.Dir, meta.ID)
	dest := filepath.Join(req.ScratchDir, "clone", "data")
	format := meta.Attributes[AttrFormat]
	if format == FormatSQL || format == FormatMongoArchive {
		dest = filepath.Join(req.ScratchDir, "clone", "dump")
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the copy's directory %s: %w", dest, err)
	}
	c := newCopier(ctx, req)
	req.Status(fmt.Sprintf("copying %s (%s) into scratch", meta.ID, reports.HumanBytes(meta.SizeBytes)))
	var v verdict
	var err error
	switch format {
	case FormatRDB:
		v, err = c.copyFile(src, filepath.Join(dest, meta.Attributes[enginered.AttrRDBFile]), meta.Attributes[AttrCompression] == "gzip")
	case FormatAOF:
		target := dest
		if hasManifest(src) {
			target = filepath.Join(dest, redisAOFDir) // Redis 7: --appenddirname appendonlydir
		}
		v, err = c.copyTree(src, target)
	case FormatMariaDBBackup:
		v, err = c.copyTree(src, dest)
	case FormatSQL, FormatMongoArchive:
		file := filepath.Join(dest, logicalFile(meta.ID))
		v, err = c.copyFile(src, file, meta.Attributes[AttrCompression] == "gzip")
		if err != nil {
			return nil, err
		}
		cp := copyOf(meta, v, "")
		logical(cp, file, format, v.bytes)
		return cp, nil
	default:
		return nil, fmt.Errorf("while copying %s: it is not a backup this source knows (format %q)", meta.ID, format)
	}
	if err != nil {
		return nil, err
	}
	return copyOf(meta, v, dest), nil
}

func newCopier(ctx context.Context, req drill.MaterializeRequest) *copier {
	return &copier{ctx: ctx, status: req.Status, what: req.Snapshot.ID, total: req.Snapshot.SizeBytes, last: time.Now()}
}

// copyOf is the copy of a backup in dataDir (empty for a logical dump) and what copying
// it proved.
func copyOf(meta *snapshot.Metadata, v verdict, dataDir string) *drill.Copy {
	f := v.finding()
	cp := &drill.Copy{DataDir: dataDir, Findings: []checks.Finding{f}, Damaged: f.Status == checks.Fail}
	if v.sidecar == "" && !v.downloaded {
		cp.Notes = append(cp.Notes, fmt.Sprintf("%s has no %s checksum sidecar: the copy proves its size and that it reads back, not that it is the backup as written", meta.ID, sidecarSuffix))
	}
	return cp
}

// logical makes cp the logical dump at file, once it reads as what it claims to be (a
// truncated SQL dump does not: the copy is then damaged and nothing is loaded).
func logical(cp *drill.Copy, file, format string, n int64) {
	if cp.Damaged {
		return
	}
	f := judgeLogical(file, format)
	cp.Findings = append(cp.Findings, f)
	cp.Damaged = f.Status == checks.Fail
	cp.Logical = &drill.LogicalDump{Path: file, Format: logicalFormat(format), Bytes: n}
}

// verdict is what copying proved of the backup.
type verdict struct {
	files int
	bytes int64
	// sha256 is the whole file's (a file entry); empty for a directory.
	sha256 string
	// sidecar is the checksum file compared with, empty when there is none.
	sidecar    string
	expected   string
	mismatches []string
	// unlisted are files of a directory its sidecar does not name (copied, not verified).
	unlisted []string
	// corrupt says why a compressed file does not decompress (proven damage).
	corrupt string
	// downloaded is a backup read from S3 (location names it): the store's checksums were
	// compared object by object.
	downloaded bool
	location   string
}

func (v verdict) finding() checks.Finding {
	ev := checks.Evidence{"algorithm": "sha256", "bytes": v.bytes, "files": v.files}
	if v.sha256 != "" {
		ev["sha256"] = v.sha256
	}
	if v.sidecar != "" {
		ev["sidecar"] = v.sidecar
	}
	if v.expected != "" {
		ev["expected"] = v.expected
	}
	if len(v.unlisted) > 0 {
		ev["unlisted"] = v.unlisted
	}
	if v.location != "" {
		ev["location"] = v.location
	}
	switch {
	case v.corrupt != "":
		ev["reason"] = v.corrupt
		return checks.Failf(drill.SnapshotIntegrityName, ev, "the backup does not decompress: %s", v.corrupt)
	case len(v.mismatches) > 0 && v.sha256 != "":
		return checks.Failf(drill.SnapshotIntegrityName, ev, "the backup's SHA-256 is %s, but its sidecar says %s: the file changed after it was written", v.sha256, v.expected)
	case len(v.mismatches) > 0:
		ev["mismatches"] = v.mismatches
		return checks.Failf(drill.SnapshotIntegrityName, ev, "%d file(s) differ from the backup's checksum sidecar, first: %s", len(v.mismatches), v.mismatches[0])
	case v.sidecar == "" && v.downloaded:
		return checks.Passf(drill.SnapshotIntegrityName, ev, "downloaded %d object(s), %s, each matching the store's size and checksums (no %s sidecar object for the whole backup)", v.files, reports.HumanBytes(v.bytes), sidecarSuffix)
	case v.sidecar == "":
		return checks.Passf(drill.SnapshotIntegrityName, ev, "copied and read back %d file(s), %s (no checksum sidecar: size and readability only)", v.files, reports.HumanBytes(v.bytes))
	case v.sha256 != "":
		return checks.Passf(drill.SnapshotIntegrityName, ev, "the backup's SHA-256 matches its sidecar")
	default:
		return checks.Passf(drill.SnapshotIntegrityName, ev, "%d file(s) match the backup's checksum sidecar", v.files-len(v.unlisted))
	}
}

// copier copies one backup, hashing what it reads and telling progress.
type copier struct {
	ctx    context.Context
	status func(string)
	what   string
	total  int64
	done   int64
	last   time.Time
}

// copyFile copies one file (decompressing it when gz), hashes the bytes as stored and
// compares them with the file's sidecar.
func (c *copier) copyFile(src, dst string, gz bool) (verdict, error) {
	var v verdict
	sum, n, corrupt, err := c.copyOne(src, dst, gz)
	if err != nil {
		return v, err
	}
	v.files, v.bytes, v.sha256, v.corrupt = 1, n, sum, corrupt
	want, err := readSidecar(src + sidecarSuffix)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return v, nil
	case err != nil:
		return v, err
	}
	v.sidecar, v.expected = src+sidecarSuffix, want
	if !strings.EqualFold(want, sum) {
		v.mismatches = []string{filepath.Base(src)}
	}
	return v, nil
}

// copyTree copies a backup directory's regular files and directories; a directory's sidecar
// lists its files by path relative to it (sha256sum run inside it).
func (c *copier) copyTree(src, dst string) (verdict, error) {
	var v verdict
	want, err := readSidecarList(src + sidecarSuffix)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		want = nil
	case err != nil:
		return v, err
	default:
		v.sidecar = src + sidecarSuffix
	}
	got := map[string]string{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("while reading backup directory %s: %w", p, err)
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o700); err != nil {
				return fmt.Errorf("while creating %s: %w", target, err)
			}
			return nil
		case !d.Type().IsRegular():
			return nil // sockets, symlinks: no backup tool writes them, and a link could lead out
		}
		sum, n, _, err := c.copyOne(p, target, false)
		if err != nil {
			return err
		}
		v.files++
		v.bytes += n
		got[filepath.ToSlash(rel)] = sum
		return nil
	})
	if err != nil {
		return v, err
	}
	v.compare(want, got)
	return v, nil
}

// compare holds a directory's files (relative path → SHA-256) to its sidecar's list (nil:
// no sidecar): a file it lists with another SHA-256, or does not have, is a mismatch; a file
// it does not list is unlisted.
func (v *verdict) compare(want, got map[string]string) {
	if want == nil {
		return
	}
	for _, rel := range slices.Sorted(maps.Keys(got)) {
		if w, ok := want[rel]; !ok {
			v.unlisted = append(v.unlisted, rel)
		} else if !strings.EqualFold(w, got[rel]) {
			v.mismatches = append(v.mismatches, rel)
		}
	}
	for rel := range want {
		if _, ok := got[rel]; !ok {
			v.mismatches = append(v.mismatches, rel+" (listed in the sidecar, absent from the backup)")
		}
	}
	slices.Sort(v.mismatches)
}

// copyOne copies src to dst and returns the SHA-256 of src's bytes and how many bytes
// were written. A gz file that does not decompress is proven damage (corrupt says why), not
// an error; a file that cannot be read, or reads shorter than it was listed, is an error.
func (c *copier) copyOne(src, dst string, gz bool) (sum string, n int64, corrupt string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, "", fmt.Errorf("while opening backup file %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", 0, "", fmt.Errorf("while reading backup file %s: %w", src, err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, "", fmt.Errorf("while creating %s: %w", dst, err)
	}
	h := sha256.New()
	raw := &readCounter{r: bufio.NewReaderSize(in, 1<<20), ctx: c.ctx, c: c}
	var r io.Reader = io.TeeReader(raw, h)
	if gz {
		n, corrupt, err = gunzip(r, out, src)
	} else {
		n, err = io.Copy(out, r)
		if err != nil {
			err = fmt.Errorf("while copying backup file %s: %w", src, err)
		}
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("while writing %s: %w", dst, cerr)
	}
	if err != nil {
		return "", n, "", err
	}
	if corrupt == "" {
		if _, err := io.Copy(io.Discard, io.TeeReader(raw, h)); err != nil { // bytes after the gzip stream
			return "", n, "", fmt.Errorf("while reading backup file %s: %w", src, err)
		}
		if raw.n < fi.Size() {
			return "", n, "", fmt.Errorf("while copying backup file %s: read %d bytes of the %d it had when opened: it was truncated while being copied", src, raw.n, fi.Size())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, corrupt, nil
}

// gunzip decompresses r into w. What the gzip reader refuses is damage; what the file
// system refuses is an error.
func gunzip(r io.Reader, w io.Writer, src string) (int64, string, error) {
	var fsErr error
	r = errReader{r, &fsErr}
	zr, err := gzip.NewReader(r)
	if err != nil {
		if fsErr != nil {
			return 0, "", fmt.Errorf("while reading backup file %s: %w", src, fsErr)
		}
		return 0, fmt.Sprintf("%s: %v", filepath.Base(src), err), nil
	}
	n, err := io.Copy(w, zr)
	switch {
	case err == nil:
		return n, "", nil
	case fsErr != nil:
		return n, "", fmt.Errorf("while reading backup file %s: %w", src, fsErr)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return n, fmt.Sprintf("%s: %v after %d decompressed bytes", filepath.Base(src), err, n), nil
	default:
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			return n, fmt.Sprintf("%s: %v after %d decompressed bytes", filepath.Base(src), err, n), nil
		}
		return n, "", fmt.Errorf("while decompressing backup file %s: %w", src, err)
	}
}

// errReader remembers a read error of the underlying file, to tell it from damage.
type errReader struct {
	r   io.Reader
	err *error
}

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		*e.err = err
	}
	return n, err
}

// readCounter counts what is read, stops on cancellation and tells progress every few seconds.
type readCounter struct {
	r   io.Reader
	ctx context.Context
	c   *copier
	n   int64
}

func (rc *readCounter) Read(p []byte) (int, error) {
	if err := rc.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := rc.r.Read(p)
	rc.n += int64(n)
	rc.c.done += int64(n)
	if time.Since(rc.c.last) >= 2*time.Second {
		rc.c.last = time.Now()
		rc.c.status(fmt.Sprintf("copying %s: %s of %s", rc.c.what, reports.HumanBytes(rc.c.done), reports.HumanBytes(rc.c.total)))
	}
	return n, err
}

// readSidecar reads the first field of a sha256sum line.
func readSidecar(path string) (string, error) {
	list, err := readSums(path)
	if err != nil {
		return "", err
	}
	for _, l := range list {
		return l[0], nil
	}
	return "", fmt.Errorf("while reading checksum sidecar %s: no checksum in it", path)
}

// readSidecarList reads sha256sum's lines: path (relative, "./" dropped) → SHA-256.
func readSidecarList(path string) (map[string]string, error) {
	list, err := readSums(path)
	if err != nil {
		return nil, err
	}
	return sumsByPath(list, path)
}

// sumsByPath keys a directory sidecar's lines by path (relative, "./" dropped).
func sumsByPath(list [][2]string, path string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range list {
		out[strings.TrimPrefix(filepath.ToSlash(filepath.Clean(l[1])), "./")] = l[0]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("while reading checksum sidecar %s: no checksum in it", path)
	}
	return out, nil
}

func readSums(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("while reading checksum sidecar %s: %w", path, err)
	}
	defer f.Close()
	return parseSums(f, path)
}

// parseSums reads sha256sum's lines (name names the sidecar in errors).
func parseSums(r io.Reader, name string) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		sum, name, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if sum == "" {
			continue
		}
		name = strings.TrimPrefix(strings.TrimLeft(name, " "), "*") // sha256sum -b marks binary
		out = append(out, [2]string{sum, name})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("while reading checksum sidecar %s: %w", name, err)
	}
	return out, nil
}

func hasManifest(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".aof.manifest") {
			return true
		}
	}
	return false
}

var _ drill.Source = (*Source)(nil)
