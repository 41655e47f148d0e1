package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// RestoreOptions prepares a restored data directory for a throwaway server.
type RestoreOptions struct {
	BinDir    string
	DataDir   string
	SocketDir string
	Port      int
	// ListenAddresses is "" (unix socket only) or "127.0.0.1".
	ListenAddresses string
	// Files are the snapshot's backup_label and tablespace_map, byte for byte.
	Files map[string][]byte
	// Tablespaces maps a tablespace OID to where its restored copy lives. tablespace_map is
	// rewritten to point there: the original paths are production's.
	Tablespaces map[string]string
	// Clean is a cleanly shut down cluster (a logical dump restored into a fresh one): it has
	// no backup_label and needs none, and starts as is.
	Clean bool
	// Recovery, when set, replays WAL staged in scratch to a recovery target (a base backup
	// with a WAL archive); nil: the copy recovers from its own pg_wal only.
	Recovery *Recovery
}

// throwawaySettings is the whole configuration of a throwaway server. The snapshot's own
// postgresql.conf is replaced: it may be absent (Debian keeps it in /etc) or point at archive
// commands, replication peers and preload libraries that belong to production.
func throwawaySettings(o RestoreOptions, control map[string]string) [][2]string {
	atLeast := func(key string, min int) string {
		if v, err := strconv.Atoi(control[key]); err == nil && v > min {
			return strconv.Itoa(v)
		}
		return strconv.Itoa(min)
	}
	return [][2]string{
		{"listen_addresses", quote(o.ListenAddresses)},
		{"port", strconv.Itoa(o.Port)},
		{"unix_socket_directories", quote(o.SocketDir)},
		{"unix_socket_permissions", "0700"},
		// Never archive, never fetch, never replicate: nothing may reach production.
		{"archive_mode", "off"},
		{"archive_command", "''"},
		{"restore_command", "''"},
		{"archive_cleanup_command", "''"},
		{"recovery_end_command", "''"},
		{"primary_conninfo", "''"},
		{"primary_slot_name", "''"},
		{"max_wal_senders", "0"},
		{"max_replication_slots", "0"},
		{"max_logical_replication_workers", "0"},
		{"max_sync_workers_per_subscription", "0"},
		{"wal_level", "replica"},
		{"shared_preload_libraries", "''"},
		{"session_preload_libraries", "''"},
		{"local_preload_libraries", "''"},
		// Enough for the checks; prepared transactions and locks at least as in pg_control.
		{"max_connections", "40"},
		{"max_prepared_transactions", atLeast("max_prepared_xacts setting", 0)},
		{"max_locks_per_transaction", atLeast("max_locks_per_xact setting", 64)},
		{"max_worker_processes", atLeast("max_worker_processes setting", 8)},
		{"max_parallel_workers_per_gather", "0"},
		{"shared_buffers", "128MB"},
		// A disposable copy: durability buys nothing here.
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"autovacuum", "off"},
		{"jit", "off"},
		{"ssl", "off"},
		{"logging_collector", "off"},
		{"log_destination", "'stderr'"},
		{"log_checkpoints", "off"},
		{"timezone", "'UTC'"},
		{"cluster_name", "'firedrill-throwaway'"},
		{"hot_standby", "on"},
	}
}

// ThrowawayConfig is the postgresql.conf of a throwaway server whose pg_control values are not
// known yet (a pod prepares its own copy): settings that must be at least as large as the
// primary's (max_prepared_transactions, ...) are left for the caller to append.
func ThrowawayConfig(o RestoreOptions) string {
	var conf strings.Builder
	conf.WriteString("# Written by firedrill for a throwaway restore drill. This server must never touch\n# production: no archiving, no replication, no preload libraries.\n")
	for _, kv := range throwawaySettings(o, nil) {
		fmt.Fprintf(&conf, "%s = %s\n", kv[0], kv[1])
	}
	return conf.String()
}

// ControlMinimums are the settings a recovering server needs at least as large as the
// primary's, with the pg_controldata line that holds the primary's value and firedrill's minimum.
var ControlMinimums = []struct {
	Setting, ControlKey string
	Min                 int
}{
	{"max_prepared_transactions", "max_prepared_xacts setting", 0},
	{"max_locks_per_transaction", "max_locks_per_xact setting", 64},
	{"max_worker_processes", "max_worker_processes setting", 8},
	{"max_connections", "max_connections setting", 40},
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// PrepareRestore turns a restored copy of a data directory into one a throwaway server can
// start on safely: backup_label (and a remapped tablespace_map) written back, any signal or
// recovery file removed, and a minimal configuration of its own.
func PrepareRestore(ctx context.Context, o RestoreOptions) error {
	d := o.DataDir
	label, ok := o.Files[BackupLabelFile]
	switch {
	case ok:
		if err := os.WriteFile(filepath.Join(d, BackupLabelFile), label, 0o600); err != nil {
			return fmt.Errorf("while writing back backup_label: %w", err)
		}
	case !o.Clean:
		return fmt.Errorf("while preparing %s: the snapshot has no backup_label", d)
	}
	if m, ok := o.Files[TablespaceMapFile]; ok && len(bytes.TrimSpace(m)) > 0 {
		remapped, err := RemapTablespaceMap(m, o.Tablespaces)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, TablespaceMapFile), remapped, 0o600); err != nil {
			return fmt.Errorf("while writing back tablespace_map: %w", err)
		}
		// With a tablespace_map, PostgreSQL creates pg_tblspc links itself; stale ones pointing
		// at production must not exist.
		entries, _ := os.ReadDir(filepath.Join(d, "pg_tblspc"))
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(d, "pg_tblspc", e.Name())); err != nil {
				return fmt.Errorf("while removing pg_tblspc/%s: %w", e.Name(), err)
			}
		}
	}
	for _, f := range []string{"standby.signal", "recovery.signal", "recovery.conf", "postmaster.pid", "postmaster.opts"} {
		if err := os.Remove(filepath.Join(d, f)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("while removing %s: %w", f, err)
		}
	}
	for _, dir := range []string{"pg_wal/archive_status", "pg_replslot", "pg_stat_tmp", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_subtrans", "pg_tblspc", "pg_logical/snapshots", "pg_logical/mappings"} {
		if err := os.MkdirAll(filepath.Join(d, dir), 0o700); err != nil {
			return fmt.Errorf("while creating %s: %w", dir, err)
		}
	}
	control, err := ControlData(ctx, o.BinDir, d)
	if err != nil {
		return err
	}
	var conf strings.Builder
	conf.WriteString("# Written by firedrill for a throwaway restore drill. This server must never touch\n# production: no archiving, no replication, no network, no preload libraries.\n")
	for _, kv := range throwawaySettings(o, control) {
		fmt.Fprintf(&conf, "%s = %s\n", kv[0], kv[1])
	}
	if o.Recovery != nil {
		rs, err := o.Recovery.settings()
		if err != nil {
			return err
		}
		conf.WriteString("# Archive recovery from WAL firedrill staged in the drill's scratch directory.\n")
		for _, kv := range rs {
			fmt.Fprintf(&conf, "%s = %s\n", kv[0], kv[1])
		}
		if err := o.Recovery.writeSignal(d); err != nil {
			return err
		}
	}
	hba := "# Written by firedrill: only the drill connects, through a private socket directory.\nlocal all all trust\n"
	if o.ListenAddresses != "" {
		hba += "host all all 127.0.0.1/32 trust\n"
	}
	for name, content := range map[string]string{
		"postgresql.conf":      conf.String(),
		"postgresql.auto.conf": "# Emptied by firedrill: ALTER SYSTEM settings belong to production.\n",
		"pg_hba.conf":          hba,
		"pg_ident.conf":        "",
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("while writing %s: %w", name, err)
		}
	}
	return nil
}

// RemapTablespaceMap rewrites each "oid path" line of a tablespace_map to the restored location.
func RemapTablespaceMap(m []byte, locations map[string]string) ([]byte, error) {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(m))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		oid, _, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("while remapping tablespace_map: malformed line %q", line)
		}
		loc, ok := locations[oid]
		if !ok {
			return nil, fmt.Errorf("while remapping tablespace_map: tablespace %s has no restored copy", oid)
		}
		fmt.Fprintf(&out, "%s %s\n", oid, loc)
	}
	return out.Bytes(), nil
}

// ControlData runs pg_controldata and returns its "key: value" lines.
func ControlData(ctx context.Context, binDir, dataDir string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pg_controldata"), "-D", dataDir)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("while reading pg_control of %s (pg_controldata): %w", dataDir, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m, nil
}
