package dump

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// Dump formats, as pg_dump --format names them.
const (
	FormatCustom    = "custom"
	FormatDirectory = "directory"
	FormatPlain     = "plain"
	// FormatTar is pg_dump --format=tar (not a tar of a directory dump: see Format.Tar).
	FormatTar = "tar"
	// FormatUnknown is a compressed file whose content could not be read: it is listed (it is
	// meant to be a dump) and its drill fails, naming it.
	FormatUnknown = "unknown"
)

// Compressions of a dump file as a whole.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// ErrNotADump means a path is neither a dump file nor a directory-format dump.
var ErrNotADump = errors.New("not a dump")

// ErrCorrupt means a dump's bytes cannot be read as what they claim to be: a truncated or
// damaged compressed stream or tar. A drill reports it as a failed restore, naming the file.
var ErrCorrupt = errors.New("the dump is truncated or corrupt")

var (
	customMagic = []byte("PGDMP")
	gzipMagic   = []byte{0x1f, 0x8b}
	zstdMagic   = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxZstdWindow bounds the memory a zstd stream may ask for (its window). zstd's levels use
// 8 MiB at most and --long 128 MiB; a stream asking for more is refused as corrupt rather
// than given the memory.
const maxZstdWindow = 128 << 20

// Format is what a dump is and how it is compressed ("", CompressionGzip or CompressionZstd).
type Format struct {
	Kind        string
	Compression string
	// Tar: the directory dump arrives as a tar of its directory (unpacked into scratch).
	Tar bool
}

// Detect tells a dump's format from its content, never from its name: a directory with a
// toc.dat is a directory dump; gzip and zstd files are looked into; then PGDMP starts a
// custom dump, a tar header a tar (pg_dump -Ft when its first member is a tar-format
// toc.dat, else a tar of a directory dump); anything else is taken for plain SQL (psql says
// otherwise when it is not). A compressed file whose content cannot be read is returned as
// FormatUnknown with an error wrapping ErrCorrupt.
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
	br := bufio.NewReaderSize(f, 64<<10)
	c := compressionOf(br)
	var content io.Reader = br
	if c != "" {
		d, err := decompressor(c, br)
		if err != nil {
			return Format{Kind: FormatUnknown, Compression: c}, fmt.Errorf("%w: %s is not a readable %s stream: %w", ErrCorrupt, filepath.Base(path), c, err)
		}
		defer d.Close()
		content = d
	}
	inner := bufio.NewReaderSize(content, 4096)
	head, err := inner.Peek(512)
	if len(head) == 0 && err != nil && err != io.EOF && c != "" {
		return Format{Kind: FormatUnknown, Compression: c}, fmt.Errorf("%w: %s is not a readable %s stream: %w", ErrCorrupt, filepath.Base(path), c, err)
	}
	switch {
	case bytes.HasPrefix(head, customMagic):
		return Format{Kind: FormatCustom, Compression: c}, nil
	case isTar(head):
		if pgDumpTar(inner) {
			return Format{Kind: FormatTar, Compression: c}, nil
		}
		return Format{Kind: FormatDirectory, Compression: c, Tar: true}, nil
	}
	return Format{Kind: FormatPlain, Compression: c}, nil
}

// compressionOf names the compression whose magic starts r ("" for none).
func compressionOf(r *bufio.Reader) string {
	head, _ := r.Peek(len(zstdMagic))
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return CompressionGzip
	case bytes.HasPrefix(head, zstdMagic):
		return CompressionZstd
	}
	return ""
}

// decompressor streams r decompressed, in bounded memory (gzip: 32 KiB window; zstd: one
// decoding goroutine, low-memory mode, at most maxZstdWindow).
func decompressor(c string, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case CompressionGzip:
		return gzip.NewReader(r)
	case CompressionZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// isTar reports whether a block is a tar header: POSIX ustar or GNU magic, and a checksum that adds up.
func isTar(h []byte) bool {
	if len(h) < 512 || !(bytes.Equal(h[257:263], []byte("ustar\x00")) || bytes.Equal(h[257:265], []byte("ustar  \x00"))) {
		return false
	}
	var sum int64
	for i, b := range h[:512] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += int64(b)
	}
	var want int64
	for _, b := range bytes.Trim(h[148:156], " \x00") {
		if b < '0' || b > '7' {
			return false
		}
		want = want*8 + int64(b-'0')
	}
	return sum == want
}

// archTar is pg_dump's archive format number of a tar archive, in the header of its toc.dat
// (PGDMP, three version bytes, int size, offset size, format).
const archTar = 3

// pgDumpTar reports whether a tar is pg_dump -Ft's: its first member is a toc.dat whose
// header says tar format (a tar of a directory dump holds a directory-format toc.dat, and
// rarely first).
func pgDumpTar(r io.Reader) bool {
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil || h.Name != "toc.dat" {
		return false
	}
	head := make([]byte, 11)
	if _, err := io.ReadFull(tr, head); err != nil {
		return false
	}
	return bytes.HasPrefix(head, customMagic) && head[10] == archTar
}

// open streams a dump file's content, decompressed. Errors reading it (a truncated or
// damaged stream) wrap ErrCorrupt and name the file.
func open(path string, f Format) (io.ReadCloser, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("while opening dump %s: %w", path, err)
	}
	br := bufio.NewReaderSize(file, 1<<20)
	if f.Compression == "" {
		return struct {
			io.Reader
			io.Closer
		}{br, file}, nil
	}
	d, err := decompressor(f.Compression, br)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("%w: %s is not a readable %s stream: %w", ErrCorrupt, filepath.Base(path), f.Compression, err)
	}
	return &corruptReader{r: d, name: filepath.Base(path), what: f.Compression, closers: []io.Closer{d, file}}, nil
}

// corruptReader tags the errors of a decompressing reader with ErrCorrupt and the file's
// name, and keeps the first so that a consumer that only saw EOF (psql, pg_restore on a
// pipe) can still be told the input was cut.
type corruptReader struct {
	r       io.Reader
	name    string
	what    string
	err     error
	closers []io.Closer
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		if c.err == nil {
			c.err = fmt.Errorf("%w: while decompressing %s (%s): %w", ErrCorrupt, c.name, c.what, err)
		}
		return n, c.err
	}
	return n, err
}

// Err is the first error decompressing met, nil if none (yet).
func (c *corruptReader) Err() error { return c.err }

func (c *corruptReader) Close() error {
	var err error
	for _, cl := range c.closers {
		err = errors.Join(err, cl.Close())
	}
	return err
}
