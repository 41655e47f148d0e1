package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemapTablespaceMap(t *testing.T) {
	locations := map[string]string{
		"16384": "/scratch/external/pg_tblspc_16384",
		"16390": "/scratch/external/pg_tblspc_16390",
	}
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{
			name: "remaps every line",
			in:   "16384 /srv/pg/tblspc one\n16390 /srv/pg/two\n",
			want: "16384 /scratch/external/pg_tblspc_16384\n16390 /scratch/external/pg_tblspc_16390\n",
		},
		{name: "blank lines dropped", in: "\n16384 /srv/a\n  \n", want: "16384 /scratch/external/pg_tblspc_16384\n"},
		{name: "no final newline", in: "16390 /srv/b", want: "16390 /scratch/external/pg_tblspc_16390\n"},
		{name: "empty", in: "", want: ""},
		{name: "unknown OID", in: "16384 /srv/a\n99999 /srv/z\n", wantErr: "tablespace 99999 has no restored copy"},
		{name: "malformed line", in: "16384\n", wantErr: `malformed line "16384"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RemapTablespaceMap([]byte(tt.in), locations)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("RemapTablespaceMap = %q, want an error", got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RemapTablespaceMap: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("RemapTablespaceMap = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestThrowawaySettings(t *testing.T) {
	settings := func(o RestoreOptions, control map[string]string) map[string]string {
		t.Helper()
		m := map[string]string{}
		for _, kv := range throwawaySettings(o, control) {
			if _, dup := m[kv[0]]; dup {
				t.Errorf("setting %s given twice", kv[0])
			}
			m[kv[0]] = kv[1]
		}
		return m
	}
	socketOnly := RestoreOptions{Port: 54329, SocketDir: "/scratch/o'brien/sock"}
	control := map[string]string{
		"max_prepared_xacts setting":   "10",
		"max_locks_per_xact setting":   "32",
		"max_worker_processes setting": "16",
	}
	tests := []struct {
		name    string
		o       RestoreOptions
		control map[string]string
		want    map[string]string
	}{
		{
			name: "nothing reaches production", o: socketOnly, control: control,
			want: map[string]string{
				"listen_addresses":                  "''",
				"archive_mode":                      "off",
				"archive_command":                   "''",
				"restore_command":                   "''",
				"archive_cleanup_command":           "''",
				"recovery_end_command":              "''",
				"primary_conninfo":                  "''",
				"primary_slot_name":                 "''",
				"max_wal_senders":                   "0",
				"max_replication_slots":             "0",
				"max_logical_replication_workers":   "0",
				"max_sync_workers_per_subscription": "0",
				"shared_preload_libraries":          "''",
				"session_preload_libraries":         "''",
				"local_preload_libraries":           "''",
				"ssl":                               "off",
				"cluster_name":                      "'firedrill-throwaway'",
			},
		},
		{
			name: "where it listens", o: socketOnly, control: control,
			want: map[string]string{
				"port":                    "54329",
				"unix_socket_directories": "'/scratch/o''brien/sock'",
				"unix_socket_permissions": "0700",
			},
		},
		{
			name: "tcp on loopback", o: RestoreOptions{Port: 5433, SocketDir: "/s", ListenAddresses: "127.0.0.1"}, control: control,
			want: map[string]string{"listen_addresses": "'127.0.0.1'", "port": "5433"},
		},
		{
			name: "at least pg_control's values", o: socketOnly, control: control,
			want: map[string]string{
				"max_prepared_transactions": "10",
				"max_locks_per_transaction": "64", // pg_control's 32 is below the default
				"max_worker_processes":      "16",
			},
		},
		{
			name: "defaults without pg_control values", o: socketOnly, control: nil,
			want: map[string]string{
				"max_prepared_transactions": "0",
				"max_locks_per_transaction": "64",
				"max_worker_processes":      "8",
			},
		},
		{
			name: "unparsable pg_control values", o: socketOnly, control: map[string]string{"max_worker_processes setting": "lots"},
			want: map[string]string{"max_worker_processes": "8"},
		},
		{
			name: "disposable", o: socketOnly, control: control,
			want: map[string]string{"fsync": "off", "synchronous_commit": "off", "autovacuum": "off", "timezone": "'UTC'"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := settings(tt.o, tt.control)
			for k, want := range tt.want {
				if v, ok := got[k]; !ok {
					t.Errorf("%s is not set, want %s", k, want)
				} else if v != want {
					t.Errorf("%s = %s, want %s", k, v, want)
				}
			}
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"/tmp", "'/tmp'"},
		{"it's", "'it''s'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := quote(tt.in); got != tt.want {
				t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestPrepareRestoreBeforePgControl(t *testing.T) {
	// Everything PrepareRestore does before it runs pg_controldata, with a bin dir that has none.
	noBin := filepath.Join(t.TempDir(), "bin")
	tests := []struct {
		name    string
		files   map[string][]byte
		clean   bool
		wantErr string
	}{
		{name: "no backup_label", files: map[string][]byte{}, wantErr: "the snapshot has no backup_label"},
		// A cluster a dump was restored into was shut down cleanly: no label, none needed.
		{name: "clean without backup_label", files: map[string][]byte{}, clean: true, wantErr: "pg_controldata"},
		{name: "malformed tablespace_map", files: map[string][]byte{BackupLabelFile: []byte(pg15Label), TablespaceMapFile: []byte("16384\n")}, wantErr: "malformed line"},
		{name: "unknown tablespace", files: map[string][]byte{BackupLabelFile: []byte(pg15Label), TablespaceMapFile: []byte("16384 /srv/a\n")}, wantErr: "tablespace 16384 has no restored copy"},
		{name: "then pg_controldata", files: map[string][]byte{BackupLabelFile: []byte(pg15Label)}, wantErr: "pg_controldata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"standby.signal", "recovery.signal", "postmaster.pid"} {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := PrepareRestore(context.Background(), RestoreOptions{BinDir: noBin, DataDir: dir, Files: tt.files, Clean: tt.clean})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("PrepareRestore error %v, want one containing %q", err, tt.wantErr)
			}
			if tt.clean {
				if _, err := os.Stat(filepath.Join(dir, BackupLabelFile)); !os.IsNotExist(err) {
					t.Errorf("a clean cluster got a backup_label (%v)", err)
				}
				return
			}
			if tt.name != "then pg_controldata" {
				return
			}
			got, err := os.ReadFile(filepath.Join(dir, BackupLabelFile))
			if err != nil || string(got) != pg15Label {
				t.Errorf("backup_label = %q, %v; want it written back byte for byte", got, err)
			}
			for _, f := range []string{"standby.signal", "recovery.signal", "postmaster.pid"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
					t.Errorf("%s still exists (%v)", f, err)
				}
			}
			for _, d := range []string{"pg_wal/archive_status", "pg_replslot", "pg_tblspc"} {
				if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
					t.Errorf("%s was not created (%v)", d, err)
				}
			}
		})
	}
}
