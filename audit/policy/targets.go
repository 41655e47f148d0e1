package policy

// targets[]: name, engine and connection (the DSN, never printed).

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine"
)

// Target is targets[]: one database firedrill snapshots, restores and audits.
type Target struct {
	Name       string        `yaml:"name" json:"name"`
	Engine     string        `yaml:"engine" json:"engine"`
	Connection Connection    `yaml:"connection" json:"connection"`
	Snapshot   SnapshotSpec  `yaml:"snapshot" json:"snapshot"`
	Restore    RestoreSpec   `yaml:"restore" json:"restore"`
	Objectives Objectives    `yaml:"objectives" json:"objectives"`
	Checks     checks.Config `yaml:"checks" json:"checks"`
	// Retention says which snapshots to keep (snapshot.go).
	Retention Retention `yaml:"retention" json:"retention"`
	// Audit configures the auditor's checks of this target (audit.go).
	Audit AuditSpec `yaml:"audit" json:"audit"`
	// Schedule is targets[].schedule: when serve drills this target (cron: "0 3 1 * *",
	// @monthly, @weekly, @daily, @every 24h); empty: serve never drills it (audits still run).
	Schedule string `yaml:"schedule" json:"schedule,omitempty"`
}

// Target returns the target called name.
func (c *Config) Target(name string) (*Target, bool) {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i], true
		}
	}
	return nil, false
}

// TargetNames lists the targets' names in order.
func (c *Config) TargetNames() []string {
	out := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		out[i] = t.Name
	}
	return out
}

// validateTarget checks a target's name (unique: seen maps names to indexes), engine and connection.
func validateTarget(p string, i int, t *Target, seen map[string]int, add addFunc) {
	switch {
	case t.Name == "":
		add(p+".name", "required: a short name such as orders")
	case !nameRe.MatchString(t.Name):
		add(p+".name", "%q is not a valid name: lowercase letters, digits and '-', at most 63", t.Name)
	default:
		if j, dup := seen[t.Name]; dup {
			add(p+".name", "duplicate target name %q (also targets[%d])", t.Name, j)
		}
		seen[t.Name] = i
	}
	oneOf(add, p+".engine", t.Engine, engine.Names())
	switch {
	case t.Connection.DSN == "" && t.Connection.DSNEnv == "":
		add(p+".connection", "required: dsn or dsnEnv (the name of an environment variable holding the DSN)")
	case t.Connection.DSN != "" && t.Connection.DSNEnv != "":
		add(p+".connection", "set dsn or dsnEnv, not both")
	case t.Connection.DSN != "":
		if err := DSNProblem(t.Engine, t.Connection.DSN); err != nil {
			add(p+".connection.dsn", "malformed DSN: %s", err.Error())
		}
	}
}

// Connection is targets[].connection: how to reach the production database. The DSN may hold a password: it is
// never logged, printed or reported.
type Connection struct {
	DSN    string `yaml:"dsn" json:"-"`
	DSNEnv string `yaml:"dsnEnv" json:"dsnEnv,omitempty"`
}

// DSN returns the target's connection string, reading dsnEnv at call time.
func (t *Target) DSN() (string, error) {
	if t.Connection.DSN != "" {
		return t.Connection.DSN, nil
	}
	key := "targets." + t.Name + ".connection.dsnEnv"
	v, ok := os.LookupEnv(t.Connection.DSNEnv)
	if !ok || v == "" {
		return "", &Error{File: "environment", Key: key,
			Msg: fmt.Sprintf("environment variable %s is not set; export it with the target's DSN", t.Connection.DSNEnv)}
	}
	if err := DSNProblem(t.Engine, v); err != nil {
		return "", &Error{File: "environment", Key: key,
			Msg: fmt.Sprintf("environment variable %s holds a malformed DSN: %s", t.Connection.DSNEnv, err.Error())}
	}
	return v, nil
}

// DSNProblem says what is wrong with a target's DSN for its engine's driver (the engine
// registry entry's ParseDSN, which parses as the driver will, without connecting), or returns nil
// for a DSN the driver accepts (or an engine it cannot check). The reason is the driver's, with
// the DSN and every password in it masked: it is safe to print.
func DSNProblem(eng, dsn string) error {
	spec, ok := engine.Lookup(eng)
	if !ok {
		return nil
	}
	err := spec.ParseDSN(dsn)
	if err == nil {
		return nil
	}
	return errors.New(dsnReason(dsn, err))
}

// dsnReason is a driver's parse error without the DSN or any password in it.
func dsnReason(dsn string, err error) string {
	msg := err.Error()
	// pgconn: "cannot parse `<dsn, best-effort redacted>`: <reason>"
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		if i := strings.Index(msg, "`: "); strings.HasPrefix(msg, "cannot parse `") && i > 0 {
			msg = msg[i+3:]
		}
	}
	msg = strings.TrimPrefix(msg, "error parsing uri: ")
	// url.Error quotes the whole URL it failed on.
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		msg = strings.ReplaceAll(msg, ue.URL, "(the DSN)")
	}
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "(the DSN)")
	}
	for _, s := range dsnSecrets(dsn) {
		for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if len(v) > 0 {
				msg = strings.ReplaceAll(msg, v, "xxxxx")
			}
		}
	}
	if msg == "" {
		msg = "the driver cannot parse it"
	}
	return msg
}

var kvPasswordRe = regexp.MustCompile(`(?i)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s&;]*))`)

// dsnSecrets finds what may be a password in a DSN of any shape: the userinfo password of a URL
// (scheme://user:password@host) or of a MySQL DSN (user:password@tcp(host)/db), and
// password=value pairs (keyword/value strings, URL query parameters). Best effort, erring on
// the side of masking too much.
func dsnSecrets(dsn string) []string {
	var out []string
	rest := dsn
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at > 0 {
		if user, pw, ok := strings.Cut(rest[:at], ":"); ok && !strings.ContainsAny(user, " =") {
			out = append(out, pw)
			if u, err := url.PathUnescape(pw); err == nil && u != pw {
				out = append(out, u)
			}
		}
	}
	for _, m := range kvPasswordRe.FindAllStringSubmatch(dsn, -1) {
		for _, v := range m[1:] {
			if v != "" {
				out = append(out, v)
				if u, err := url.QueryUnescape(v); err == nil && u != v {
					out = append(out, u)
				}
			}
		}
	}
	// Longest first, so a password that contains another is masked whole.
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
