package dump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Dump formats, as pg_dump --format names them.
const (
	FormatCustom    = "custom"
	FormatDirectory = "directory"
	FormatPlain     = "plain"
)

// CompressionGzip marks a dump file compressed as a whole with gzip.
const CompressionGzip = "gzip"

// ErrNotADump means a path is neither a dump file nor a directory-format dump.
var ErrNotADump = errors.New("not a dump")

var (
	customMagic = []byte("PGDMP")
	gzipMagic   = []byte{0x1f, 0x8b}
)

// Format is what a dump is and how it is compressed ("" or CompressionGzip).
type Format struct {
	Kind        string
	Compression string
}

// Detect tells a dump's format from its content: a directory with a toc.dat is a directory
// dump; a file starting with PGDMP a custom one; a gzip file is looked into; anything else
// is taken for plain SQL (psql says otherwise when it is not).
func Detect(path string) (Format, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Format{}, fmt.Errorf("while reading dump %s: %w", path, err)
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "toc.dat")); err != nil {
			return Format{}, fmt.Errorf("%w: directory %s has no toc.dat", ErrNotADump, path)
		}
		return Format{Kind: FormatDirectory}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return Format{}, fmt.Errorf("while reading dump %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(customMagic))
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !bytes.HasPrefix(head, gzipMagic) {
		return Format{Kind: kindOf(head)}, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Format{}, err
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return Format{}, fmt.Errorf("while reading gzip dump %s: %w", path, err)
	}
	inner := make([]byte, len(customMagic))
	n, _ = io.ReadFull(zr, inner)
	return Format{Kind: kindOf(inner[:n]), Compression: CompressionGzip}, nil
}

func kindOf(head []byte) string {
	if bytes.Equal(head, customMagic) {
		return FormatCustom
	}
	return FormatPlain
}

// open streams a dump file's content, decompressed.
func open(path string, f Format) (io.ReadCloser, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("while opening dump %s: %w", path, err)
	}
	if f.Compression != CompressionGzip {
		return file, nil
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(file, 1<<20))
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("while reading gzip dump %s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, file}, nil
}
