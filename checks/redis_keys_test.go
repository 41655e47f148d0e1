package checks

import (
	"maps"
	"testing"
)

func TestParseKeyspace(t *testing.T) {
	info := "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\ndb3:keys=10,expires=0,avg_ttl=0,subexpiry=0\r\nbogus:keys=1\r\n"
	got := ParseKeyspace(info)
	want := map[int]KeyspaceDB{0: {Keys: 2, Expires: 1}, 3: {Keys: 10}}
	if !maps.Equal(got, want) {
		t.Errorf("ParseKeyspace() = %v, want %v", got, want)
	}
	if got := ParseKeyspace("# Keyspace\r\n"); len(got) != 0 {
		t.Errorf("empty keyspace = %v", got)
	}
}

func TestRecordKeyspaceRoundTrip(t *testing.T) {
	attrs := map[string]string{"serverVersion": "7.0.15"}
	before := map[int]KeyspaceDB{0: {Keys: 100, Expires: 10}, 2: {Keys: 5}}
	after := map[int]KeyspaceDB{0: {Keys: 104, Expires: 10}, 2: {Keys: 5}, 4: {Keys: 1}}
	RecordKeyspace(attrs, before, KeyspaceDrift(before, after))
	if attrs[RecordedKeys] != "105" || attrs["keys.db0"] != "100" || attrs["expires.db0"] != "10" || attrs["keysDrift.db0"] != "4" || attrs["keysDrift.db4"] != "1" {
		t.Errorf("attributes %v", attrs)
	}
	if _, ok := attrs["keysDrift.db2"]; ok {
		t.Errorf("a database that did not move has a drift: %v", attrs)
	}
	got, ok := recordedKeyspace(attrs)
	want := map[int]recordedDB{0: {KeyspaceDB{100, 10}, 4}, 2: {KeyspaceDB{5, 0}, 0}, 4: {KeyspaceDB{}, 1}}
	if !ok || !maps.Equal(got, want) {
		t.Errorf("recordedKeyspace() = %v, %v; want %v", got, ok, want)
	}
	if _, ok := recordedKeyspace(map[string]string{"serverVersion": "7"}); ok {
		t.Error("a snapshot without key counts reads as recorded")
	}
	// An empty dataset is recorded too: its total says so.
	empty := map[string]string{}
	RecordKeyspace(empty, map[int]KeyspaceDB{}, nil)
	if _, ok := recordedKeyspace(empty); !ok || empty[RecordedKeys] != "0" {
		t.Errorf("empty dataset recorded as %v", empty)
	}
}

func TestKeyBounds(t *testing.T) {
	tests := []struct {
		name           string
		r              recordedDB
		lo, hi, margin int64
	}{
		{"no keys", recordedDB{}, 0, 1, 1},
		{"small db: one key of margin", recordedDB{KeyspaceDB: KeyspaceDB{Keys: 50}}, 49, 51, 1},
		{"1% margin", recordedDB{KeyspaceDB: KeyspaceDB{Keys: 10000}}, 9900, 10100, 100},
		{"keys with a TTL are not owed", recordedDB{KeyspaceDB: KeyspaceDB{Keys: 10000, Expires: 4000}}, 5900, 10100, 100},
		{"drift beyond 1% widens the margin", recordedDB{KeyspaceDB: KeyspaceDB{Keys: 1000}, Drift: 300}, 700, 1300, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, margin := keyBounds(tt.r)
			if lo != tt.lo || hi != tt.hi || margin != tt.margin {
				t.Errorf("keyBounds() = %d, %d, %d; want %d, %d, %d", lo, hi, margin, tt.lo, tt.hi, tt.margin)
			}
		})
	}
}
