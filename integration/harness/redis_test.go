package harness_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firedrill/firedrill/integration/harness"
)

func TestRedisSetGetAndBGSAVE(t *testing.T) {
	harness.Integration(t)
	r := harness.StartRedis(t)
	ctx := t.Context()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()

	if err := rdb.Set(ctx, "drill:last", "2026-01-01T00:00:00Z", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := rdb.Get(ctx, "drill:last").Result()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if got != "2026-01-01T00:00:00Z" {
		t.Errorf("GET drill:last = %q, want the value set", got)
	}

	// BGSAVE writes dump.rdb in r.Dir: the file a Redis backup check would look at. BGSAVE marks
	// the save in progress before it answers, so "not in progress" afterwards means finished.
	if err := rdb.BgSave(ctx).Err(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := rdb.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatalf("INFO persistence: %v", err)
		}
		if strings.Contains(info, "rdb_bgsave_in_progress:0") {
			if !strings.Contains(info, "rdb_last_bgsave_status:ok") {
				t.Fatalf("BGSAVE failed:\n%s", info)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BGSAVE did not finish within 10 s:\n%s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := os.Stat(filepath.Join(r.Dir, "dump.rdb"))
	if err != nil {
		t.Fatalf("BGSAVE wrote no dump.rdb: %v", err)
	}
	if st.Size() == 0 {
		t.Error("dump.rdb is empty")
	}
}
