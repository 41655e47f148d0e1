package demo

import "testing"

// The stop and start commands demo --keep prints are pasted into a shell: every word must
// reach pg_ctl as it is, whatever TMPDIR holds.
func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/lib/postgresql/15/bin/pg_ctl", "/usr/lib/postgresql/15/bin/pg_ctl"},
		{"-m", "-m"},
		{"/tmp/firedrill-demo-123/production/data", "/tmp/firedrill-demo-123/production/data"},
		{"/tmp/my dir/data", "'/tmp/my dir/data'"},
		{"/tmp/it's/data", `'/tmp/it'\''s/data'`},
		{"/tmp/$HOME;rm", "'/tmp/$HOME;rm'"},
		{"", "''"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := shellQuote(tt.in); got != tt.want {
				t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
