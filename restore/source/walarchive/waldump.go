package walarchive

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// commitRe matches a commit record of pg_waldump's output (TZ=UTC).
var commitRe = regexp.MustCompile(`lsn: ([0-9A-F]+/[0-9A-F]+),.* desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC`)

// LastCommit reads the plan's newest segments with pg_waldump (from binDir, read-only) and
// returns the last committed transaction's time and LSN: the last recoverable point in time.
// Only plain segments of a directory archive are read; ok is false when none holds a commit
// (or pg_waldump cannot run).
func (l *Listing) LastCommit(ctx context.Context, binDir string, p *Plan, maxSegments int) (at time.Time, lsn string, ok bool) {
	tool := filepath.Join(binDir, "pg_waldump")
	seen := 0
	for i := len(p.Files) - 1; i >= 0 && seen < maxSegments; i-- {
		f := p.Files[i]
		n, isWAL := ParseName(f.Name, l.SegmentBytes)
		if !isWAL || n.Kind != KindSegment {
			continue
		}
		seen++
		if n.Compression != "" || l.open != nil {
			return time.Time{}, "", false
		}
		cmd := exec.CommandContext(ctx, tool, "--path="+l.Dir, "--rmgr=Transaction", f.Name, f.Name)
		cmd.Env = []string{"LC_ALL=C", "TZ=UTC", "PATH=/usr/bin:/bin"}
		out, _ := cmd.Output() // the newest segment ends in an invalid record: an error after the records
		var last []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if m := commitRe.FindStringSubmatch(sc.Text()); m != nil {
				last = m
			}
		}
		if last != nil {
			t, err := time.Parse("2006-01-02 15:04:05.999999", last[2])
			if err == nil {
				return t.UTC(), last[1], true
			}
		}
	}
	return time.Time{}, "", false
}
