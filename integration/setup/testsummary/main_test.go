package main

import (
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	const pkg = "github.com/firedrill/firedrill/integration/harness"
	ev := func(action, test, output string) string {
		return `{"Action":"` + action + `","Package":"` + pkg + `","Test":"` + test + `","Output":` + quote(output) + `}`
	}
	tests := []struct {
		name     string
		input    []string
		wantOK   bool
		want     []string // substrings of the output, in order
		dontWant []string
	}{
		{
			name: "pass, skip and components",
			input: []string{
				ev("run", "TestA", ""),
				ev("output", "TestA", "=== RUN   TestA\n"),
				ev("output", "TestA", "    a_test.go:9: harness: component redis 7.0.15 (started on 127.0.0.1:1234)\n"),
				ev("output", "TestA", "    a_test.go:10: chatty log line\n"),
				ev("pass", "TestA", ""),
				ev("output", "TestA/sub", "    a_test.go:12: harness: component redis 7.0.15 (started on 127.0.0.1:1235)\n"),
				ev("pass", "TestA/sub", ""),
				ev("output", "TestB", "    b_test.go:3: MariaDB is not available (mariadbd not found); run 'make setup'\n"),
				ev("output", "TestB", "--- SKIP: TestB (0.00s)\n"),
				ev("skip", "TestB", ""),
				ev("output", "", "PASS\n"),
				ev("output", "", "ok  \t"+pkg+"\t0.1s\n"),
				ev("pass", "", ""),
			},
			wantOK: true,
			want: []string{
				"ok  \t" + pkg,
				"redis 7.0.15", "1 test(s): TestA\n",
				"== skipped tests: 1",
				"integration/harness TestB: b_test.go:3: MariaDB is not available (mariadbd not found); run 'make setup'",
				"tests: 2 passed, 0 failed, 1 skipped\n",
			},
			dontWant: []string{"chatty log line", "PASS\n"},
		},
		{
			name: "a failing test shows its output",
			input: []string{
				ev("output", "TestC", "=== RUN   TestC\n"),
				ev("output", "TestC", "    c_test.go:5: boom\n"),
				ev("output", "TestC", "--- FAIL: TestC (0.01s)\n"),
				ev("fail", "TestC", ""),
				ev("output", "", "FAIL\n"),
				ev("output", "", "FAIL\t"+pkg+"\t0.2s\n"),
				ev("fail", "", ""),
			},
			want: []string{"c_test.go:5: boom", "--- FAIL: TestC", "FAIL\t" + pkg, "== failed packages: 1",
				"tests: 0 passed, 1 failed, 0 skipped"},
		},
		{
			name: "build errors and plain lines pass through",
			input: []string{
				`{"ImportPath":"` + pkg + ` [` + pkg + `.test]","Action":"build-output","Output":"x.go:1:1: undefined: y\n"}`,
				"not json at all",
				ev("output", "", "FAIL\t"+pkg+" [build failed]\n"),
				ev("fail", "", ""),
			},
			want: []string{"x.go:1:1: undefined: y\n", "not json at all\n", "[build failed]", "tests: 0 passed, 0 failed, 0 skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			s := newSummary(&out)
			for _, l := range tt.input {
				s.add(l)
			}
			if ok := s.finish(); ok != tt.wantOK {
				t.Errorf("finish() = %v, want %v", ok, tt.wantOK)
			}
			got := out.String()
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order); output:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.dontWant {
				if strings.Contains(got, w) {
					t.Errorf("output has %q; output:\n%s", w, got)
				}
			}
		})
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
