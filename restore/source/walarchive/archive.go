package walarchive

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File is one file of the archive.
type File struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Listing is what an archive directory held when it was listed.
type Listing struct {
	Dir string
	// SegmentBytes is wal_segment_size: given, else the size of the archive's uncompressed
	// segments, else DefaultSegmentBytes.
	SegmentBytes int64
	files        map[string]File
	// open reads a file of an archive that is not a directory (NewListing); nil: Dir.
	open func(File) (io.ReadCloser, error)
}

// NewListing is an archive that is not a plain directory (a pgBackRest repository): files
// under their WAL names, opened with open (which returns them decompressed).
func NewListing(where string, segBytes int64, files []File, open func(File) (io.ReadCloser, error)) *Listing {
	if segBytes <= 0 {
		segBytes = DefaultSegmentBytes
	}
	l := &Listing{Dir: where, SegmentBytes: segBytes, files: map[string]File{}, open: open}
	for _, f := range files {
		l.files[f.Name] = f
	}
	return l
}

// List lists an archive directory (its top level: archive_command writes no subdirectories).
// segBytes 0 infers the segment size from the files.
func List(ctx context.Context, dir string, segBytes int64) (*Listing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("while listing WAL archive %s: %w", dir, err)
	}
	l := &Listing{Dir: dir, SegmentBytes: segBytes, files: map[string]File{}}
	sizes := map[int64]int{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed while listing
		}
		l.files[e.Name()] = File{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()}
		if n, ok := ParseName(e.Name(), DefaultSegmentBytes); ok && n.Kind == KindSegment && n.Compression == "" {
			sizes[fi.Size()]++
		}
	}
	if l.SegmentBytes == 0 {
		l.SegmentBytes = inferSegmentBytes(sizes)
	}
	return l, nil
}

// inferSegmentBytes is the most common power-of-two size of uncompressed segments (sizes
// counts them), else DefaultSegmentBytes.
func inferSegmentBytes(sizes map[int64]int) int64 {
	seg, best := int64(DefaultSegmentBytes), 0
	for size, n := range sizes {
		if n > best && size > 0 && size&(size-1) == 0 {
			seg, best = size, n
		}
	}
	return seg
}

// Find returns the archive's file for a WAL file name: as is, else compressed.
func (l *Listing) Find(name string) (File, bool) {
	if f, ok := l.files[name]; ok {
		return f, true
	}
	for _, c := range Compressions {
		if f, ok := l.files[name+c]; ok {
			return f, true
		}
	}
	return File{}, false
}

// Names lists the archive's file names, sorted.
func (l *Listing) Names() []string {
	out := make([]string, 0, len(l.files))
	for n := range l.files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Open opens an archive file for reading, decompressing gzip.
func (l *Listing) Open(f File) (io.ReadCloser, error) {
	if l.open != nil {
		return l.open(f)
	}
	r, err := os.Open(filepath.Join(l.Dir, f.Name))
	if err != nil {
		return nil, fmt.Errorf("while opening %s in the WAL archive: %w", f.Name, err)
	}
	return decompress(f.Name, l.SegmentBytes, r)
}

// decompress reads an archive file by its name's compression (plain or .gz); it closes r on
// error.
func decompress(name string, segBytes int64, r io.ReadCloser) (io.ReadCloser, error) {
	n, _ := ParseName(name, segBytes)
	switch n.Compression {
	case "":
		return r, nil
	case ".gz":
		zr, err := gzip.NewReader(r)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("while reading gzip file %s of the WAL archive: %w", name, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, r}, nil
	default:
		r.Close()
		return nil, fmt.Errorf("%w: %s is %s-compressed; firedrill reads plain and .gz WAL archives", ErrUnsupported, name, n.Compression)
	}
}

// ReadSmall reads a small archive file whole (a history or backup history file).
func (l *Listing) ReadSmall(f File) ([]byte, error) {
	r, err := l.Open(f)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("while reading %s of the WAL archive: %w", f.Name, err)
	}
	return b, nil
}

// ErrUnsupported marks an archive file firedrill cannot read (a compression it lacks).
var ErrUnsupported = errors.New("unsupported WAL archive file")

// Backups returns the archive's backup history files (.backup), newest start first.
func (l *Listing) Backups() []File {
	var out []File
	var names []Name
	for _, f := range l.files {
		if n, ok := ParseName(f.Name, l.SegmentBytes); ok && n.Kind == KindBackup {
			out = append(out, f)
			names = append(names, n)
		}
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		na, nb := names[a], names[b]
		switch {
		case na.Segment != nb.Segment:
			return cmpU(nb.Segment, na.Segment)
		case na.Offset != nb.Offset:
			return cmpU(nb.Offset, na.Offset)
		}
		return cmpU(uint64(nb.Timeline), uint64(na.Timeline))
	})
	sorted := make([]File, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
