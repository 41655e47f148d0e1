package walarchive

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLastCommit(t *testing.T) {
	bin := t.TempDir()
	// A stand-in pg_waldump: commits in segment 3 only, then the error the newest segment ends with.
	script := `#!/bin/sh
case "$3" in
*0003) echo 'rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/00300220, prev 0/003001E8, desc: COMMIT 2026-11-30 10:53:19.727819 UTC'
       echo 'rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/00300300, prev 0/00300220, desc: COMMIT 2026-11-30 10:53:21.5 UTC';;
esac
echo 'pg_waldump: error: error in WAL record' >&2
exit 1
`
	if err := os.WriteFile(filepath.Join(bin, "pg_waldump"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	l := archive(t, map[string]string{SegmentName(1, 2, seg): "", SegmentName(1, 3, seg): "", SegmentName(1, 4, seg): ""})
	p, err := l.Plan(From{Timeline: 1, StartLSN: LSN(2 * seg)})
	if err != nil {
		t.Fatal(err)
	}
	at, lsn, ok := l.LastCommit(context.Background(), bin, p, 3)
	if !ok || lsn != "0/00300300" || !at.Equal(time.Date(2026, 11, 30, 10, 53, 21, 500000000, time.UTC)) {
		t.Errorf("LastCommit = %v %s %v", at, lsn, ok)
	}
	if _, _, ok := l.LastCommit(context.Background(), bin, p, 1); ok {
		t.Error("a commit was found in the newest segment, which has none")
	}
}
