package mariadb

import (
	"bufio"
	"io"
	"strings"
)

// DumpHeader is what a mariadb-dump (or mysqldump) SQL file says of itself in its leading
// comments; a dump written with --skip-comments says nothing (Tool empty).
type DumpHeader struct {
	// Tool is "MariaDB dump" or "MySQL dump".
	Tool string
	// ServerVersion is the dumped server's version ("10.11.6-MariaDB-0+deb12u1").
	ServerVersion string
	// Database is the one database dumped without --databases ("Database: shop"); empty for
	// --all-databases and several --databases.
	Database string
}

// DumpCompletedMarker opens the last line mariadb-dump and mysqldump write (unless told
// --skip-comments): a dump with a header but without it was cut short.
const DumpCompletedMarker = "-- Dump completed"

// ReadDumpHeader reads the header comments at the start of a SQL dump.
func ReadDumpHeader(r io.Reader) DumpHeader {
	var h DumpHeader
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for i := 0; i < 30 && sc.Scan(); i++ {
		l := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(l, "--") && !strings.HasPrefix(l, "/*") && l != "" {
			break
		}
		switch {
		case strings.HasPrefix(l, "-- MariaDB dump"):
			h.Tool = "MariaDB dump"
		case strings.HasPrefix(l, "-- MySQL dump"):
			h.Tool = "MySQL dump"
		case strings.HasPrefix(l, "-- Server version"):
			h.ServerVersion = strings.TrimSpace(strings.TrimPrefix(l, "-- Server version"))
		case strings.HasPrefix(l, "-- Host:"):
			if _, db, ok := strings.Cut(l, "Database:"); ok {
				h.Database = strings.TrimSpace(db)
			}
		}
	}
	return h
}

// ParseBinlogInfo parses the content of a mariadb-backup binlog info file (BinlogInfoFiles)
// read from elsewhere than a local directory (an S3 object), under the freezer's attribute keys.
func ParseBinlogInfo(s string) (map[string]string, error) { return parseBinlogInfo(s) }
