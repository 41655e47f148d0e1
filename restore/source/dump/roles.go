package dump

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

var (
	ident = `("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`
	// ALTER ... OWNER TO x; GRANT ... TO x, y [WITH ...]; REVOKE ... FROM x; FOR ROLE x.
	ownerTo = regexp.MustCompile(`OWNER TO ` + ident)
	grantTo = regexp.MustCompile(`^GRANT .* TO ((?:` + ident + `(?:, )?)+)`)
	revoke  = regexp.MustCompile(`^REVOKE .* FROM ((?:` + ident + `(?:, )?)+)`)
	forRole = regexp.MustCompile(`FOR ROLE ` + ident)
	oneName = regexp.MustCompile(ident)
)

// ScanRoles returns the roles a dump's SQL names as owners or grantees, sorted, without the
// ones every cluster has (PUBLIC, pg_* roles, the bootstrap superuser).
func ScanRoles(sql io.Reader) ([]string, error) {
	seen := map[string]bool{}
	add := func(names string) {
		for _, n := range oneName.FindAllString(names, -1) {
			if strings.HasPrefix(n, `"`) {
				n = strings.ReplaceAll(n[1:len(n)-1], `""`, `"`)
			} else {
				switch strings.ToUpper(n) {
				case "PUBLIC", "CURRENT_USER", "SESSION_USER", "CURRENT_ROLE", "WITH", "GRANTED", "BY", "CASCADE", "RESTRICT", "OPTION":
					continue
				}
				n = strings.ToLower(n)
			}
			if n != superuser && !strings.HasPrefix(n, "pg_") {
				seen[n] = true
			}
		}
	}
	sc := bufio.NewScanner(sql)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	inCopy := false
	for sc.Scan() {
		line := sc.Text()
		if inCopy { // table data: never SQL
			inCopy = line != `\.`
			continue
		}
		if strings.HasPrefix(line, "COPY ") && strings.HasSuffix(line, "FROM stdin;") {
			inCopy = true
			continue
		}
		if m := ownerTo.FindStringSubmatch(line); m != nil {
			add(m[1])
		}
		if m := forRole.FindStringSubmatch(line); m != nil {
			add(m[1])
		}
		if m := grantTo.FindStringSubmatch(line); m != nil {
			add(strings.SplitN(m[1], " WITH ", 2)[0])
		}
		if m := revoke.FindStringSubmatch(line); m != nil {
			add(m[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("while scanning the dump for roles: %w", err)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
