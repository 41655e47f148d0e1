package s3objects

import (
	"strings"
	"testing"

	"github.com/firedrill/firedrill/checks"
)

func TestDownloadJudged(t *testing.T) {
	l := &Location{Where: "s3://b/p/"}
	good, bad := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, tc := range []struct {
		name     string
		d        Download
		status   checks.Status
		msg      string
		mismatch string
	}{
		{"no claims", Download{Rel: "x.rdb", SHA256: good, Bytes: 3, StoreBytes: 3}, checks.Pass, "downloaded the whole backup (the store has no SHA-256", ""},
		{"claims agree", Download{Rel: "x.rdb", SHA256: good, Bytes: 3, StoreBytes: 3, Claims: []Claim{{good, "the object's sha256 metadata"}}}, checks.Pass, "matches the object's sha256 metadata", ""},
		{"a claim disagrees", Download{Rel: "x.rdb", SHA256: good, Bytes: 3, StoreBytes: 3, Claims: []Claim{{good, "A"}, {bad, "B"}}}, checks.Fail, "but B says " + bad, "x.rdb (SHA-256 " + good + ", B says " + bad + ")"},
		{"short", Download{Rel: "x.rdb", SHA256: good, Bytes: 2, StoreBytes: 3}, checks.Fail, "downloaded 2 bytes of x.rdb, but the store says it has 3", "x.rdb (downloaded 2 bytes, the store says 3)"},
		{"length not stated", Download{Rel: "x.rdb", SHA256: good, Bytes: 2, StoreBytes: -1}, checks.Pass, "whole backup", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.d.Finding(l, "backup")
			if f.Status != tc.status || !strings.Contains(f.Message, tc.msg) || f.Evidence["location"] != l.Where {
				t.Errorf("Finding = %s %q %v, want %s with %q", f.Status, f.Message, f.Evidence, tc.status, tc.msg)
			}
			if m := tc.d.Mismatch(); m != tc.mismatch {
				t.Errorf("Mismatch = %q, want %q", m, tc.mismatch)
			}
		})
	}
}

func TestHexSHA256(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		strings.ToUpper(hex):                           hex,
		"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=": hex,
		"not a sum": "",
		"abcd":      "",
	} {
		if got := HexSHA256(in); got != want {
			t.Errorf("HexSHA256(%q) = %q, want %q", in, got, want)
		}
	}
}
