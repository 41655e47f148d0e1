package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firedrill/firedrill/restore/engine"
)

// Files kept with a snapshot byte for byte and written back at restore.
const (
	BackupLabelFile   = "backup_label"
	TablespaceMapFile = "tablespace_map"
)

// Attribute keys recorded with a snapshot.
const (
	AttrStartLSN         = "startLSN"
	AttrStopLSN          = "stopLSN"
	AttrTimeline         = "timeline"
	AttrServerVersion    = "serverVersion"
	AttrServerVersionNum = "serverVersionNum"
	AttrSuperuser        = "superuser"
	AttrSystemID         = "systemIdentifier"
	AttrDataChecksums    = "dataChecksums"
	AttrWALSegments      = "walSegments"
	AttrWALReserved      = "walReservedBySlot"
)

// ErrNotOnline means the server cannot take an online backup (a standby, wal_level minimal, ...).
var ErrNotOnline = errors.New("server cannot take an online backup")

// OnlineBackupOptions configures an online backup.
type OnlineBackupOptions struct {
	Label string
	// Fast asks for an immediate checkpoint instead of a spread one.
	Fast bool
	// WaitForArchive makes pg_backup_stop wait until the WAL is archived. firedrill copies the
	// WAL into the snapshot itself, so this is off by default: a broken archive_command must not
	// hang the snapshot (the auditor reports it instead).
	WaitForArchive bool
	Now            func() time.Time
}

// OnlineBackup runs pg_backup_start and pg_backup_stop in ONE held session: a non-exclusive
// backup is aborted when its session ends, so the session is the backup. It also holds a
// temporary physical replication slot from before the start until Close, so that the WAL the
// backup needs cannot be recycled while the files are copied.
type OnlineBackup struct {
	conn *pgx.Conn
	opts OnlineBackupOptions

	versionNum int
	inBackup   bool
	slot       string
	startLSN   string
	startedAt  time.Time
	info       map[string]string
}

var _ engine.Freezer = (*OnlineBackup)(nil)

// NewOnlineBackup takes ownership of conn: Close closes it.
func NewOnlineBackup(conn *pgx.Conn, opts OnlineBackupOptions) *OnlineBackup {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Label == "" {
		opts.Label = "firedrill"
	}
	return &OnlineBackup{conn: conn, opts: opts, info: map[string]string{}}
}

// ServerInfo reads facts recorded with the snapshot: version, superuser, system identifier,
// data checksums, data_directory. Call before Freeze.
func (b *OnlineBackup) ServerInfo(ctx context.Context) (map[string]string, error) {
	var version, superuser, checksums string
	var sysid int64
	if err := b.conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version'),
		(SELECT rolname FROM pg_roles WHERE oid = 10), current_setting('data_checksums'),
		(SELECT system_identifier FROM pg_control_system())`).Scan(&b.versionNum, &version, &superuser, &checksums, &sysid); err != nil {
		return nil, fmt.Errorf("while reading server facts: %w", err)
	}
	b.info[AttrServerVersionNum] = strconv.Itoa(b.versionNum)
	b.info[AttrServerVersion] = version
	b.info[AttrSuperuser] = superuser
	b.info[AttrDataChecksums] = checksums
	b.info[AttrSystemID] = strconv.FormatInt(sysid, 10)
	out := map[string]string{}
	for k, v := range b.info {
		out[k] = v
	}
	var dataDir string
	if err := b.conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err == nil {
		out["dataDirectory"] = dataDir
	}
	return out, nil
}

// Tablespace is a tablespace outside the data directory, whose files an online backup copies
// too (through the pg_tblspc links).
type Tablespace struct {
	Name     string
	Location string
}

// Tablespaces lists the server's tablespaces that have a location of their own.
func (b *OnlineBackup) Tablespaces(ctx context.Context) ([]Tablespace, error) {
	rows, err := b.conn.Query(ctx, `SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace
		WHERE pg_tablespace_location(oid) <> '' ORDER BY spcname`)
	if err != nil {
		return nil, fmt.Errorf("while listing tablespaces: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tablespace, error) {
		var t Tablespace
		return t, r.Scan(&t.Name, &t.Location)
	})
	if err != nil {
		return nil, fmt.Errorf("while listing tablespaces: %w", err)
	}
	return out, nil
}

// AuthFailure returns the server's refusal when err is a failed authentication (SQLSTATE
// 28P01, wrong password; 28000, no pg_hba.conf entry or role), else nil. Its message names the
// user, never a password.
func AuthFailure(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000") {
		return pe
	}
	return nil
}

// Freeze starts the backup: reserve WAL with a temporary slot, then pg_backup_start.
func (b *OnlineBackup) Freeze(ctx context.Context) error {
	if b.versionNum == 0 {
		if _, err := b.ServerInfo(ctx); err != nil {
			return err
		}
	}
	var inRecovery bool
	var walLevel string
	if err := b.conn.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('wal_level')").Scan(&inRecovery, &walLevel); err != nil {
		return fmt.Errorf("while checking the server can take an online backup: %w", err)
	}
	if inRecovery {
		return fmt.Errorf("%w: it is a standby; snapshot the primary", ErrNotOnline)
	}
	if walLevel == "minimal" {
		return fmt.Errorf("%w: wal_level is minimal; set wal_level = replica and restart", ErrNotOnline)
	}
	// A temporary slot lives exactly as long as this session, so it can never be leaked.
	slot := fmt.Sprintf("firedrill_%d_%d", b.conn.PgConn().PID(), b.opts.Now().UnixNano()%1_000_000)
	if _, err := b.conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true, true)", slot); err == nil {
		b.slot = slot
		b.info[AttrWALReserved] = "true"
	} else {
		// Without a slot (max_replication_slots = 0, no REPLICATION privilege) the copy still
		// works when the WAL is not recycled before it is copied; a missing segment is then a
		// clear error at the end, not a broken snapshot.
		b.info[AttrWALReserved] = "false: " + err.Error()
	}
	startSQL := "SELECT pg_backup_start($1, $2)::text"
	if b.versionNum < 150000 {
		startSQL = "SELECT pg_start_backup($1, $2, false)::text"
	}
	b.startedAt = b.opts.Now()
	if err := b.conn.QueryRow(ctx, startSQL, b.opts.Label, b.opts.Fast).Scan(&b.startLSN); err != nil {
		return fmt.Errorf("while starting the online backup (pg_backup_start): %w", err)
	}
	b.inBackup = true
	return nil
}

// Thaw stops the backup (pg_backup_stop) and returns the backup_label, tablespace_map, the
// LSNs, and the WAL segments from the backup's start to its stop, which must be copied from
// pg_wal (while the slot still holds them) before Close.
func (b *OnlineBackup) Thaw(ctx context.Context) (*engine.Frozen, error) {
	if !b.inBackup {
		return nil, errors.New("while stopping the online backup: no backup in progress")
	}
	stopSQL := "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop($1)"
	if b.versionNum < 150000 {
		stopSQL = "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_stop_backup(false, $1)"
	}
	var stopLSN, label, spcmap string
	if err := b.conn.QueryRow(ctx, stopSQL, b.opts.WaitForArchive).Scan(&stopLSN, &label, &spcmap); err != nil {
		return nil, fmt.Errorf("while stopping the online backup (pg_backup_stop): %w", err)
	}
	b.inBackup = false
	ended := b.opts.Now()

	tli, startSeg, err := parseLabel(label)
	if err != nil {
		return nil, err
	}
	var stopSeg string
	var segSize int64
	if err := b.conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn)", stopLSN).Scan(&stopSeg); err != nil {
		return nil, fmt.Errorf("while naming the backup's last WAL segment: %w", err)
	}
	if err := b.conn.QueryRow(ctx, "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'").Scan(&segSize); err != nil {
		return nil, fmt.Errorf("while reading wal_segment_size: %w", err)
	}
	segs, err := walSegmentsBetween(startSeg, stopSeg, segSize)
	if err != nil {
		return nil, err
	}
	after := make([]string, 0, len(segs)+1)
	for _, s := range segs {
		after = append(after, "pg_wal/"+s)
	}
	if tli > 1 {
		after = append(after, fmt.Sprintf("pg_wal/%08X.history", tli))
	}
	attrs := map[string]string{
		AttrStartLSN:    b.startLSN,
		AttrStopLSN:     stopLSN,
		AttrTimeline:    strconv.Itoa(tli),
		AttrWALSegments: strconv.Itoa(len(segs)),
	}
	for k, v := range b.info {
		attrs[k] = v
	}
	files := map[string][]byte{BackupLabelFile: []byte(label)}
	if spcmap != "" {
		files[TablespaceMapFile] = []byte(spcmap)
	}
	return &engine.Frozen{StartedAt: b.startedAt, EndedAt: ended, Attributes: attrs, Files: files, AfterThaw: after}, nil
}

// Close ends backup mode if it is still on, drops the slot and closes the session. It does not
// use ctx's cancellation: releasing must work after an interrupt.
func (b *OnlineBackup) Close(ctx context.Context) error {
	if b.conn == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	var errs []error
	if b.inBackup {
		stopSQL := "SELECT pg_backup_stop(false)"
		if b.versionNum < 150000 {
			stopSQL = "SELECT pg_stop_backup(false, false)"
		}
		if _, err := b.conn.Exec(cctx, stopSQL); err != nil {
			// Closing the session below aborts the backup anyway.
			errs = append(errs, fmt.Errorf("while ending backup mode: %w", err))
		}
		b.inBackup = false
	}
	if b.slot != "" {
		_, _ = b.conn.Exec(cctx, "SELECT pg_drop_replication_slot($1)", b.slot)
		b.slot = ""
	}
	if err := b.conn.Close(cctx); err != nil {
		errs = append(errs, fmt.Errorf("while closing the backup session: %w", err))
	}
	b.conn = nil
	return errors.Join(errs...)
}

var (
	labelStartRe    = regexp.MustCompile(`(?m)^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$`)
	labelTimelineRe = regexp.MustCompile(`(?m)^START TIMELINE: (\d+)$`)
)

// parseLabel reads the start timeline and start segment from a backup_label.
func parseLabel(label string) (int, string, error) {
	m := labelStartRe.FindStringSubmatch(label)
	if m == nil {
		return 0, "", fmt.Errorf("while reading backup_label: no START WAL LOCATION line in %q", label)
	}
	tli := 0
	if t := labelTimelineRe.FindStringSubmatch(label); t != nil {
		tli, _ = strconv.Atoi(t[1])
	} else {
		v, _ := strconv.ParseUint(m[1][:8], 16, 32)
		tli = int(v)
	}
	return tli, m[1], nil
}

// walSegmentsBetween lists the WAL segment file names from first to last inclusive.
func walSegmentsBetween(first, last string, segSize int64) ([]string, error) {
	if segSize <= 0 {
		return nil, fmt.Errorf("invalid wal_segment_size %d", segSize)
	}
	perID := uint64(0x100000000) / uint64(segSize)
	parse := func(name string) (tli, segno uint64, err error) {
		if len(name) != 24 {
			return 0, 0, fmt.Errorf("invalid WAL file name %q", name)
		}
		t, e1 := strconv.ParseUint(name[0:8], 16, 32)
		hi, e2 := strconv.ParseUint(name[8:16], 16, 32)
		lo, e3 := strconv.ParseUint(name[16:24], 16, 32)
		if err := errors.Join(e1, e2, e3); err != nil {
			return 0, 0, fmt.Errorf("invalid WAL file name %q: %w", name, err)
		}
		return t, hi*perID + lo, nil
	}
	tli, from, err := parse(first)
	if err != nil {
		return nil, err
	}
	_, to, err := parse(last)
	if err != nil {
		return nil, err
	}
	if to < from {
		return nil, fmt.Errorf("WAL stop segment %s precedes start segment %s", last, first)
	}
	out := make([]string, 0, to-from+1)
	for s := from; s <= to; s++ {
		out = append(out, fmt.Sprintf("%08X%08X%08X", tli, s/perID, s%perID))
	}
	return out, nil
}
