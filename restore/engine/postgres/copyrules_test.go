package postgres

import (
	"testing"

	"github.com/firedrill/firedrill/restore/engine"
)

func TestCopyRule(t *testing.T) {
	tests := []struct {
		rel   string
		isDir bool
		want  engine.CopyAction
	}{
		{"postmaster.pid", false, engine.Skip},
		{"postmaster.opts", false, engine.Skip},
		{"backup_label", false, engine.Skip},
		{"backup_label.old", false, engine.Skip},
		{"tablespace_map", false, engine.Skip},
		{"standby.signal", false, engine.Skip},
		{"recovery.signal", false, engine.Skip},
		{"recovery.conf", false, engine.Skip},
		{"global/pg_internal.init", false, engine.Skip},
		{"base/1/pg_internal.init", false, engine.Skip},
		{".s.PGSQL.5432", false, engine.Skip},
		{".s.PGSQL.5432.lock", false, engine.Skip},
		{"base/pgsql_tmp", true, engine.Skip},
		{"base/pgsql_tmp/pgsql_tmp1234.0", false, engine.Skip},
		{"pg_tblspc/16384/PG_15_202209061/pgsql_tmp", true, engine.Skip},
		{"pg_wal", true, engine.SkipContents},
		{"pg_wal/000000010000000000000004", false, engine.Copy}, // only reached as AfterThaw
		{"pg_wal/archive_status", true, engine.SkipContents},
		{"pg_xlog", true, engine.SkipContents},
		{"pg_stat_tmp", true, engine.SkipContents},
		{"pg_replslot", true, engine.SkipContents},
		{"pg_dynshmem", true, engine.SkipContents},
		{"pg_notify", true, engine.SkipContents},
		{"pg_serial", true, engine.SkipContents},
		{"pg_snapshots", true, engine.SkipContents},
		{"pg_subtrans", true, engine.SkipContents},
		{"base/1/1234", false, engine.Copy},
		{"base/1/1234_fsm", false, engine.Copy},
		{"base/1", true, engine.Copy},
		{"global/pg_control", false, engine.Copy},
		{"PG_VERSION", false, engine.Copy},
		{"postgresql.auto.conf", false, engine.Copy},
		{"pg_stat", true, engine.Copy},
		{"pg_xact", true, engine.Copy},
		{"pg_tblspc/16384", true, engine.Copy},
		{"pg_tblspc/16384/PG_15_202209061/5/16385", false, engine.Copy},
		// The exclusions are by place: a directory of the same name deeper down is data.
		{"base/pg_wal", true, engine.Copy},
		// And a directory named like an excluded file is not excluded.
		{"postmaster.pid", true, engine.Copy},
	}
	for _, tt := range tests {
		name := tt.rel
		if tt.isDir {
			name += "/"
		}
		t.Run(name, func(t *testing.T) {
			if got := CopyRule(tt.rel, tt.isDir); got != tt.want {
				t.Errorf("CopyRule(%q, %v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
			}
		})
	}
}
