package checks

import (
	"slices"
	"testing"
	"time"
)

func TestReplyText(t *testing.T) {
	tests := []struct {
		reply any
		want  string
		ok    bool
	}{
		{int64(42), "42", true},
		{"PONG", "PONG", true},
		{[]any{"a", "b", "c"}, "3", true},
		{map[any]any{"a": "1"}, "1", true},
		{1.5, "1.5", true},
		{true, "1", true},
		{struct{}{}, "", false},
	}
	for _, tt := range tests {
		got, ok := replyText(tt.reply)
		if got != tt.want || ok != tt.ok {
			t.Errorf("replyText(%#v) = %q, %v; want %q, %v", tt.reply, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1796040000", at, true},
		{"1796040000000", at, true},
		{"1796040000.5", at.Add(500 * time.Millisecond), true},
		{"2026-11-30T12:00:00Z", at, true},
		{"2026-11-30T13:00:00+01:00", at, true},
		{" 1796040000\n", at, true},
		{"yesterday", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// A Redis target's checks: keys only when configured, the Redis freshness check for a key,
// the SQL one for a query, never one without what it reads.
func TestBuildForRedis(t *testing.T) {
	eq := "PONG"
	cfg := Config{
		Keys:      &KeysConfig{Min: map[string]int64{"0": 1}},
		Redis:     []RedisAssertion{{Name: "ping", Command: []string{"PING"}, Expect: Expect{Equals: &eq}}},
		Freshness: &FreshnessConfig{Key: "last-write"},
		Amcheck:   AmcheckOn(false), Checksums: boolp(false), RowCounts: &RowCountConfig{Enabled: boolp(false)},
	}
	names := func(cs []Check) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name())
		}
		return out
	}
	got, skipped := BuildFor(cfg, "redis")
	// Other engines' checks that are on by default may be named skipped: not Redis's.
	if want := []string{"keys", "redis:ping", "freshness"}; !slices.Equal(names(got), want) ||
		slices.ContainsFunc(skipped, func(s Skipped) bool { return slices.Contains(want, s.Check) }) {
		t.Errorf("BuildFor(redis) = %v, skipped %v; want %v", names(got), skipped, want)
	}
	if _, ok := got[2].(*RedisFreshness); !ok {
		t.Errorf("freshness for redis is %T", got[2])
	}
	got, skipped = BuildFor(cfg, "postgres")
	var skippedNames []string
	for _, s := range skipped {
		skippedNames = append(skippedNames, s.Check)
	}
	for _, n := range []string{"redis:ping", "freshness"} {
		if slices.Contains(names(got), n) || !slices.Contains(skippedNames, n) {
			t.Errorf("BuildFor(postgres) = %v, skipped %v: want %s skipped", names(got), skippedNames, n)
		}
	}
	// Keys is on by default: a drill of another engine does not name it skipped.
	if slices.Contains(names(got), "keys") || slices.Contains(skippedNames, "keys") {
		t.Errorf("BuildFor(postgres) = %v, skipped %v: keys neither built nor named", names(got), skippedNames)
	}
	// Keys is on when its block is absent or present, off when disabled.
	for _, k := range []*KeysConfig{nil, {Min: map[string]int64{"0": 1}}} {
		cfg.Keys = k
		if got, _ := BuildFor(cfg, "redis"); !slices.Contains(names(got), "keys") {
			t.Errorf("keys %+v: not built", k)
		}
	}
	cfg.Keys = &KeysConfig{Enabled: boolp(false)}
	if got, _ := BuildFor(cfg, "redis"); slices.Contains(names(got), "keys") {
		t.Errorf("keys disabled: built")
	}
	// A query alone builds the SQL freshness check only.
	cfg.Freshness = &FreshnessConfig{Query: "SELECT now()"}
	if got, _ := BuildFor(cfg, "redis"); slices.Contains(names(got), FreshnessName) {
		t.Errorf("a query built a Redis freshness check: %v", names(got))
	}
}
