package postgres

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Recovery targets (restore.source.recovery.target) besides a time or an LSN.
const (
	TargetLatest    = "latest"
	TargetImmediate = "immediate"
	TargetTime      = "time"
	TargetLSN       = "lsn"
)

// RecoveryTarget is where archive recovery stops: the end of the archive (latest), the
// backup's consistency point (immediate), a time or an LSN.
type RecoveryTarget struct {
	Kind string
	// Time and LSN are set for their kinds.
	Time time.Time
	LSN  string
}

var lsnRe = regexp.MustCompile(`^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$`)

// ParseRecoveryTarget reads recovery.target: latest, immediate, an RFC 3339 timestamp or an
// LSN (16/B374D848). Empty is latest.
func ParseRecoveryTarget(s string) (RecoveryTarget, error) {
	switch s = strings.TrimSpace(s); {
	case s == "" || s == TargetLatest:
		return RecoveryTarget{Kind: TargetLatest}, nil
	case s == TargetImmediate:
		return RecoveryTarget{Kind: TargetImmediate}, nil
	case lsnRe.MatchString(s):
		return RecoveryTarget{Kind: TargetLSN, LSN: strings.ToUpper(s)}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return RecoveryTarget{}, fmt.Errorf("%q is not a recovery target: use latest, immediate, an RFC 3339 timestamp (2026-11-30T10:00:00Z) or an LSN (16/B374D848)", s)
	}
	return RecoveryTarget{Kind: TargetTime, Time: t}, nil
}

func (t RecoveryTarget) String() string {
	switch t.Kind {
	case TargetTime:
		return t.Time.UTC().Format(time.RFC3339Nano)
	case TargetLSN:
		return t.LSN
	case "":
		return TargetLatest
	}
	return t.Kind
}

// Settings are the recovery_target_* settings of the target; recovery ends by promoting.
func (t RecoveryTarget) Settings() [][2]string {
	out := [][2]string{{"recovery_target_timeline", "'latest'"}, {"recovery_target_action", "'promote'"}}
	switch t.Kind {
	case TargetImmediate:
		out = append(out, [2]string{"recovery_target", "'immediate'"})
	case TargetTime:
		out = append(out, [2]string{"recovery_target_time", quote(t.Time.UTC().Format("2006-01-02 15:04:05.999999") + "+00")})
	case TargetLSN:
		out = append(out, [2]string{"recovery_target_lsn", quote(t.LSN)})
	}
	return out
}

// Recovery is archive recovery of a base backup from WAL that firedrill staged in the drill's
// scratch directory: the server's restore_command copies from there and nowhere else, so it
// never learns where the real archive is.
type Recovery struct {
	// StagingDir holds the WAL files (segments, history files) recovery may ask for.
	StagingDir string
	Target     RecoveryTarget
}

// settings are the lines PrepareRestore appends to the throwaway's configuration.
func (r *Recovery) settings() ([][2]string, error) {
	if !filepath.IsAbs(r.StagingDir) || strings.ContainsAny(r.StagingDir, "'\"\\$`\n") {
		return nil, fmt.Errorf("while configuring recovery: staging directory %q must be an absolute path without quotes", r.StagingDir)
	}
	cmd := fmt.Sprintf(`cp -- "%s/%%f" "%%p"`, r.StagingDir)
	// No hot standby: a replaying server then need not match the primary's max_connections,
	// max_wal_senders, ... (which a throwaway keeps low); nobody connects before it promotes.
	return append([][2]string{{"restore_command", quote(cmd)}, {"hot_standby", "off"}}, r.Target.Settings()...), nil
}

// writeSignal asks the server for targeted archive recovery.
func (r *Recovery) writeSignal(dataDir string) error {
	if err := os.WriteFile(filepath.Join(dataDir, "recovery.signal"), nil, 0o600); err != nil {
		return fmt.Errorf("while writing recovery.signal: %w", err)
	}
	return nil
}
