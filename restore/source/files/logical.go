package files

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
)

// DumpFormatName is the finding of reading a materialised logical dump as what it claims to
// be: a SQL dump that reaches mariadb-dump's closing line, an archive that opens with
// mongodump's magic number.
const DumpFormatName = "dump-format"

// mongoArchiveMagic opens every mongodump --archive stream (little-endian 0x8199e26d).
const mongoArchiveMagic uint32 = 0x8199e26d

// logicalName says whether name is a logical dump of kind, its format, and whether the name
// says gzip.
func logicalName(kind, name string) (format string, gz, ok bool) {
	switch kind {
	case KindMariaDBDump:
		switch {
		case strings.HasSuffix(name, ".sql"):
			return FormatSQL, false, true
		case strings.HasSuffix(name, ".sql.gz"):
			return FormatSQL, true, true
		}
	case KindMongoDump:
		switch {
		case strings.HasSuffix(name, ".archive"):
			return FormatMongoArchive, false, true
		case strings.HasSuffix(name, ".archive.gz"):
			return FormatMongoArchive, true, true
		}
	}
	return "", false, false
}

// sniffGzip says whether the file starts with gzip's magic bytes.
func sniffGzip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 2)
	n, _ := io.ReadFull(f, b)
	return n == 2 && b[0] == 0x1f && b[1] == 0x8b
}

// sqlHeader reads a SQL dump's header comments (decompressing when gz); what cannot be read
// says nothing (the copy judges the file).
func sqlHeader(p string, gz bool) enginemariadb.DumpHeader {
	f, err := os.Open(p)
	if err != nil {
		return enginemariadb.DumpHeader{}
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return enginemariadb.DumpHeader{}
		}
		r = zr
	}
	return enginemariadb.ReadDumpHeader(r)
}

// logicalFile is the name of a logical dump once decompressed in scratch.
func logicalFile(id string) string {
	return strings.TrimSuffix(path.Base(id), ".gz")
}

// logicalFormat is the seam's format of an entry's format.
func logicalFormat(format string) string {
	if format == FormatMongoArchive {
		return drill.LogicalMongoArchive
	}
	return drill.LogicalSQL
}

// judgeLogical reads the decompressed dump at p as what it claims to be. A SQL dump whose
// header says mariadb-dump or mysqldump wrote it must end with their closing line (a dump cut
// short does not); an archive must open with mongodump's magic number.
func judgeLogical(p, format string) checks.Finding {
	f, err := os.Open(p)
	if err != nil {
		return checks.Errorf(DumpFormatName, nil, "could not read the dump: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return checks.Errorf(DumpFormatName, nil, "could not read the dump: %v", err)
	}
	ev := checks.Evidence{"file": path.Base(p), "bytes": fi.Size()}
	switch format {
	case FormatMongoArchive:
		b := make([]byte, 4)
		if n, _ := io.ReadFull(f, b); n < 4 || binary.LittleEndian.Uint32(b) != mongoArchiveMagic {
			ev["firstBytes"] = fmt.Sprintf("%x", b[:n])
			return checks.Failf(DumpFormatName, ev, "%s is not a mongodump archive: it does not open with the archive's magic number 6de29981", path.Base(p))
		}
		return checks.Passf(DumpFormatName, ev, "%s opens as a mongodump archive", path.Base(p))
	default:
		h := enginemariadb.ReadDumpHeader(f)
		if h.Tool == "" {
			return checks.Passf(DumpFormatName, ev, "%s has no mariadb-dump header (--skip-comments?): its end cannot be checked before it is loaded", path.Base(p))
		}
		ev["tool"], ev["serverVersion"] = h.Tool, h.ServerVersion
		if h.Database != "" {
			ev["database"] = h.Database
		}
		tail := make([]byte, min(fi.Size(), 4096))
		if _, err := f.ReadAt(tail, fi.Size()-int64(len(tail))); err != nil {
			return checks.Errorf(DumpFormatName, ev, "could not read the dump's end: %v", err)
		}
		lines := bytes.Split(bytes.TrimRight(tail, "\n"), []byte("\n"))
		last := string(lines[len(lines)-1])
		if !strings.HasPrefix(last, enginemariadb.DumpCompletedMarker) {
			ev["lastLine"] = truncate(last, 200)
			return checks.Failf(DumpFormatName, ev, "%s ends before the %q line %s writes last: the dump is truncated", path.Base(p), enginemariadb.DumpCompletedMarker, h.Tool)
		}
		ev["lastLine"] = last
		return checks.Passf(DumpFormatName, ev, "%s is a whole %s (it ends with %q)", path.Base(p), h.Tool, last)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
