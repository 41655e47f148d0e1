package checks

import "testing"

// TestIncrementalChanged: a block range is unchanged only when every segment file holding it
// is byte for byte the baseline's; a relation without a path, or a nil Incremental, is
// changed.
func TestIncrementalChanged(t *testing.T) {
	inc := &Incremental{Unchanged: map[string]bool{"base/5/100": true, "base/5/100.2": true, "base/5/200": true}}
	const seg = 10
	tests := []struct {
		name       string
		file       string
		start, end int64
		want       bool
	}{
		{"first segment unchanged", "base/5/100", 0, 9, false},
		{"range into the changed second segment", "base/5/100", 5, 12, true},
		{"second segment changed", "base/5/100", 10, 19, true},
		{"third segment unchanged", "base/5/100", 20, 29, false},
		{"fourth segment is new", "base/5/100", 30, 30, true},
		{"other relation", "base/5/300", 0, 0, true},
		{"no path (a tablespace's, or unknown)", "", 0, 0, true},
	}
	for _, tt := range tests {
		if got := inc.changed(tt.file, tt.start, tt.end, seg); got != tt.want {
			t.Errorf("%s: changed(%q, %d, %d) = %v, want %v", tt.name, tt.file, tt.start, tt.end, got, tt.want)
		}
	}
	if !inc.anyChanged("base/5/100", 25, seg) || inc.anyChanged("base/5/200", 7, seg) || inc.anyChanged("base/5/200", 0, seg) {
		t.Error("anyChanged: want base/5/100 (25 blocks) changed, base/5/200 (7 blocks, or empty) unchanged")
	}
	var none *Incremental
	if !none.changed("base/5/100", 0, 0, seg) {
		t.Error("a nil Incremental (a full drill) must call everything changed")
	}
}
