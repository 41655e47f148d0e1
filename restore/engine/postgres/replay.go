package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/firedrill/firedrill/checks"
)

// ReplayTouches is what WAL replay writes in a copy's data directory, by data-directory path:
// segment files a record's block reference names ("base/5/16397.1", "base/5/16397_fsm"), and
// relations or database directories a record truncates, creates or copies, whose every file
// counts ("base/5/16397", "base/16400/").
type ReplayTouches struct {
	Files    map[string]bool
	Prefixes []string
	// Records counts the WAL records read.
	Records int
}

// Touches reports whether replay may write file (a data-directory path such as
// "base/5/16397.1").
func (t *ReplayTouches) Touches(file string) bool {
	if t.Files[file] {
		return true
	}
	for _, p := range t.Prefixes {
		switch {
		case strings.HasSuffix(p, "/"):
			if strings.HasPrefix(file, p) {
				return true
			}
		case file == p || strings.HasPrefix(file, p+".") || strings.HasPrefix(file, p+"_"):
			return true
		}
	}
	return false
}

var (
	blkrefRe = regexp.MustCompile(`blkref #\d+: rel (\d+)/(\d+)/(\d+)(?: fork (\w+))? blk (\d+)`)
	// Storage (SMGR) records: "TRUNCATE base/5/16384 to 0 blocks flags 7", "CREATE base/5/16391".
	smgrRe = regexp.MustCompile(`desc: (?:TRUNCATE|CREATE) ((?:base/\d+|global)/\d+)`)
	// Database records: "CREATE_FILE_COPY copy dir 1663/1 to 1663/16384", "CREATE_WAL_LOG
	// create dir 1663/16384", "DROP dir 1663/16384".
	dbaseRe = regexp.MustCompile(`desc: \w+ (?:copy dir \d+/\d+ to|create dir|dir) (\d+)/(\d+)`)
	// rmgrRe starts every record line.
	rmgrRe = regexp.MustCompile(`^rmgr: `)
)

// relationPath is a relation fork's first segment, by data-directory path; empty for a
// tablespace other than pg_default and pg_global (outside the data directory).
func relationPath(spc, db, rel string) string {
	switch spc {
	case "1663":
		return "base/" + db + "/" + rel
	case "1664":
		return "global/" + rel
	}
	return ""
}

var forkSuffix = map[string]string{"": "", "main": "", "fsm": "_fsm", "vm": "_vm", "init": "_init"}

// ParseWALDump reads pg_waldump's output and collects what replay writes.
func ParseWALDump(r io.Reader) (*ReplayTouches, error) {
	t := &ReplayTouches{Files: map[string]bool{}}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if !rmgrRe.MatchString(line) {
			continue
		}
		t.Records++
		for _, m := range blkrefRe.FindAllStringSubmatch(line, -1) {
			base := relationPath(m[1], m[2], m[3])
			if base == "" {
				continue // a tablespace's files are always checked
			}
			suffix, ok := forkSuffix[m[4]]
			if !ok {
				return nil, fmt.Errorf("unknown fork %q in %q", m[4], line)
			}
			blk, _ := strconv.ParseInt(m[5], 10, 64)
			t.Files[checks.SegmentFile(base+suffix, blk/checks.SegmentBlocks)] = true
		}
		var prefix string
		if m := smgrRe.FindStringSubmatch(line); m != nil {
			prefix = m[1]
		} else if m := dbaseRe.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "rmgr: Database") {
			if p := relationPath(m[1], m[2], "x"); p != "" {
				prefix = strings.TrimSuffix(p, "x")
			}
		}
		if prefix != "" && !seen[prefix] {
			seen[prefix] = true
			t.Prefixes = append(t.Prefixes, prefix)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Strings(t.Prefixes)
	return t, nil
}

var walFileRe = regexp.MustCompile(`^[0-9A-F]{24}$`)

// WALReplayTouches runs binDir's pg_waldump over a copy's pg_wal, from the segment recovery
// starts at (the backup_label's START WAL LOCATION; without a label, the oldest segment there),
// and says what replay will write. The copy's WAL must be on one timeline.
func WALReplayTouches(ctx context.Context, binDir, dataDir string, label []byte) (*ReplayTouches, error) {
	walDir := filepath.Join(dataDir, "pg_wal")
	entries, err := os.ReadDir(walDir)
	if err != nil {
		return nil, fmt.Errorf("while listing the copy's WAL: %w", err)
	}
	var segs []string
	for _, e := range entries {
		if walFileRe.MatchString(e.Name()) {
			segs = append(segs, e.Name())
		}
	}
	sort.Strings(segs)
	if len(segs) == 0 {
		return nil, fmt.Errorf("the copy's pg_wal holds no WAL segment")
	}
	start := segs[0]
	if len(label) > 0 {
		_, s, err := parseLabel(string(label))
		if err != nil {
			return nil, err
		}
		start = s
	}
	for _, s := range segs {
		if s[:8] != start[:8] {
			return nil, fmt.Errorf("the copy's WAL spans timelines (%s and %s)", start[:8], s[:8])
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pg_waldump"), "--path", walDir, start)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t, err := ParseWALDump(&stdout)
	if err != nil {
		return nil, fmt.Errorf("while reading pg_waldump's output: %w", err)
	}
	msg := strings.TrimSpace(stderr.String())
	// pg_waldump stops at the end of the valid WAL with an error naming it: that is the end
	// replay stops at too.
	endOfWAL := strings.Contains(msg, "invalid record length") || strings.Contains(msg, "could not find file") ||
		strings.Contains(msg, "invalid magic number") || strings.Contains(msg, "unexpected pageaddr")
	if runErr != nil && (!endOfWAL || t.Records == 0) {
		return nil, fmt.Errorf("pg_waldump --path %s %s: %v: %s", walDir, start, runErr, msg)
	}
	return t, nil
}
