// Command testsummary reads `go test -json` on its standard input and prints what plain
// `go test` prints (package ok/FAIL lines, the full output of failing tests), plus each skipped
// test with its reason (at the end, in one list), then which real components the tests used (the "harness: component"
// lines the integration harness logs), and a closing "tests: N passed, N failed, N skipped" line.
//
// It exits 1 when a test or a package failed, so `set -o pipefail; go test -json ... | testsummary`
// fails as go test would. Used by `make test`.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// componentPrefix is harness.ComponentPrefix; not imported so that this command builds even
// when the harness package does not.
const componentPrefix = "harness: component "

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	// ImportPath is set on build-output and build-fail events (Go 1.24+).
	ImportPath string
}

type testKey struct{ pkg, test string }

type summary struct {
	out io.Writer

	buffered                map[testKey][]string // output of tests still running
	passed, failed, skipped int
	failedPackages          int
	skips                   []string            // "pkg Test: reason"
	components              map[string][]string // "mariadb 10.11" -> tests that used it
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, buffered: map[testKey][]string{}, components: map[string][]string{}}
}

func (s *summary) line(text string) { fmt.Fprint(s.out, text) }

// add handles one input line: a JSON event, or anything else, which is printed as it is.
func (s *summary) add(raw string) {
	var e event
	if !strings.HasPrefix(raw, "{") || json.Unmarshal([]byte(raw), &e) != nil {
		s.line(raw + "\n")
		return
	}
	switch {
	case e.Action == "build-output":
		s.line(e.Output)
	case e.Test == "":
		s.packageEvent(e)
	default:
		s.testEvent(e)
	}
}

func (s *summary) packageEvent(e event) {
	switch e.Action {
	case "output":
		// Plain go test prints "PASS" only under -v; keep ok/FAIL/no test files lines.
		if t := strings.TrimSpace(e.Output); t == "PASS" || strings.HasPrefix(t, "=== ") {
			return
		}
		s.line(e.Output)
	case "fail":
		s.failedPackages++
	}
}

func (s *summary) testEvent(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "output":
		s.buffered[k] = append(s.buffered[k], e.Output)
		if i := strings.Index(e.Output, componentPrefix); i >= 0 {
			c := strings.TrimSpace(e.Output[i+len(componentPrefix):])
			if j := strings.Index(c, " ("); j >= 0 {
				c = c[:j] // keep "name version", drop the address
			}
			top, _, _ := strings.Cut(e.Test, "/") // subtests count for their test
			if users := s.components[c]; len(users) == 0 || users[len(users)-1] != top {
				s.components[c] = append(users, top)
			}
		}
	case "pass":
		s.passed++
		delete(s.buffered, k)
	case "fail":
		s.failed++
		for _, l := range s.buffered[k] {
			s.line(l)
		}
		delete(s.buffered, k)
	case "skip":
		s.skipped++
		reason := skipReason(s.buffered[k])
		s.skips = append(s.skips, fmt.Sprintf("%s %s: %s", shortPackage(e.Package), e.Test, reason))
		delete(s.buffered, k)
	}
}

// skipReason picks the message of t.Skip from a test's output.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "no reason given"
	}
	return msg[len(msg)-1]
}

func shortPackage(p string) string {
	return strings.TrimPrefix(p, "github.com/firedrill/firedrill/")
}

// finish prints the closing summary and reports whether everything passed.
func (s *summary) finish() bool {
	// Tests still buffered never ended: the binary crashed or timed out. Show what they said.
	for k, lines := range s.buffered {
		s.line(fmt.Sprintf("--- (no result) %s %s:\n", shortPackage(k.pkg), k.test))
		for _, l := range lines {
			s.line(l)
		}
	}
	s.line("\n== real components used by tests\n")
	if len(s.components) == 0 {
		s.line("   none\n")
	}
	names := make([]string, 0, len(s.components))
	for c := range s.components {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		tests := s.components[c]
		s.line(fmt.Sprintf("   %-50s %3d test(s): %s\n", c, len(tests), abbreviate(tests, 4)))
	}
	s.line(fmt.Sprintf("== skipped tests: %d\n", len(s.skips)))
	for _, sk := range s.skips {
		s.line("   " + sk + "\n")
	}
	if s.failedPackages > 0 {
		s.line(fmt.Sprintf("== failed packages: %d\n", s.failedPackages))
	}
	s.line(fmt.Sprintf("tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped))
	return s.failed == 0 && s.failedPackages == 0
}

func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", and %d more", len(items)-n)
}

func main() {
	s := newSummary(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for in.Scan() {
		s.add(in.Text())
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: while reading go test -json: %v\n", err)
		os.Exit(1)
	}
	if !s.finish() {
		os.Exit(1)
	}
}
