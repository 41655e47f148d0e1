package policy

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firedrill/firedrill/restore/engine"
)

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
