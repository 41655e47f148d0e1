package postgres

import (
	"slices"
	"strings"
	"testing"
)

// pg_waldump (PostgreSQL 15) lines, as it prints them.
const walDump = `rmgr: Heap        len (rec/tot):     59/  7555, tx:        735, lsn: 0/02000060, prev 0/01FFFFF0, desc: INSERT off 1 flags 0x00, blkref #0: rel 1663/5/16384 blk 0 FPW
rmgr: Btree       len (rec/tot):     64/    64, tx:        724, lsn: 0/01789200, prev 0/017891C0, desc: INSERT_LEAF off 268, blkref #0: rel 1663/5/16389 blk 131075
rmgr: XLOG        len (rec/tot):     49/   8221, tx:          0, lsn: 0/02001000, prev 0/02000F00, desc: FPI_FOR_HINT , blkref #0: rel 1663/1/1255 fork fsm blk 2 FPW
rmgr: Heap2       len (rec/tot):     64/    64, tx:          0, lsn: 0/02002000, prev 0/02001000, desc: VISIBLE cutoff xid 735 flags 0x01, blkref #0: rel 1663/5/16384 fork vm blk 0, blkref #1: rel 1663/5/16384 blk 3
rmgr: Heap        len (rec/tot):     54/    54, tx:        736, lsn: 0/02003000, prev 0/02002000, desc: INSERT off 2, blkref #0: rel 1664/0/1262 blk 0
rmgr: Heap        len (rec/tot):     54/    54, tx:        737, lsn: 0/02003100, prev 0/02003000, desc: INSERT off 2, blkref #0: rel 16400/5/16500 blk 0
rmgr: Storage     len (rec/tot):     46/    46, tx:          0, lsn: 0/02004000, prev 0/02003100, desc: TRUNCATE base/5/16387 to 0 blocks flags 7
rmgr: Storage     len (rec/tot):     42/    42, tx:          0, lsn: 0/02004100, prev 0/02004000, desc: CREATE base/5/16391
rmgr: Database    len (rec/tot):     42/    42, tx:        740, lsn: 0/02005000, prev 0/02004100, desc: CREATE_FILE_COPY copy dir 1663/1 to 1663/16384
pg_waldump: error: error in WAL record at 0/20068D8: invalid record length at 0/2006950: wanted 24, got 0
`

// TestParseWALDump: every block reference names its segment file (fork and segment), a
// truncated or created relation and a copied database directory name every file under them,
// and a tablespace outside the data directory is left out (its files are always checked).
func TestParseWALDump(t *testing.T) {
	got, err := ParseWALDump(strings.NewReader(walDump))
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != 9 {
		t.Errorf("records = %d, want 9", got.Records)
	}
	var files []string
	for f := range got.Files {
		files = append(files, f)
	}
	slices.Sort(files)
	want := []string{"base/1/1255_fsm", "base/5/16384", "base/5/16384_vm", "base/5/16389.1", "global/1262"}
	if !slices.Equal(files, want) {
		t.Errorf("files = %v, want %v", files, want)
	}
	if want := []string{"base/16384/", "base/5/16387", "base/5/16391"}; !slices.Equal(got.Prefixes, want) {
		t.Errorf("prefixes = %v, want %v", got.Prefixes, want)
	}
	for file, touched := range map[string]bool{
		"base/5/16384": true, "base/5/16384.1": false, "base/5/16389.1": true, "base/5/16389": false,
		"base/5/16387": true, "base/5/16387.2": true, "base/5/16387_fsm": true, "base/5/163870": false,
		"base/16384/2619": true, "base/1638/1": false, "global/1262": true,
	} {
		if got.Touches(file) != touched {
			t.Errorf("Touches(%s) = %v, want %v", file, !touched, touched)
		}
	}
}
