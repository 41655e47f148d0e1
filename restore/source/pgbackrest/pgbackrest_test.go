package pgbackrest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// fake is a pgbackrest stand-in that answers info and repo-ls from files and records its
// arguments.
func fake(t *testing.T, info, ls string) (*Source, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"info.json": info, "ls.json": ls} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
echo "$@" >> ` + dir + `/args
for a in "$@"; do
  case "$a" in
    info) cat ` + dir + `/info.json; exit 0;;
    repo-ls) cat ` + dir + `/ls.json; exit 0;;
  esac
done
exit 0
`
	bin := filepath.Join(dir, "pgbackrest")
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return &Source{Target: "orders", Stanza: "main", Config: "/etc/pgbackrest/main.conf", RepoPath: "/repo", Command: bin}, filepath.Join(dir, "args")
}

const infoJSON = `[{"name":"main","status":{"code":0,"message":"ok"},
 "db":[{"id":1,"system-id":7713916233348892859,"version":"15"}],
 "archive":[{"id":"15-1","min":"000000010000000000000001","max":"000000010000000000000009","database":{"id":1}}],
 "backup":[
  {"label":"20261130-100000F","type":"full","error":false,"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},
   "info":{"size":100,"repository":{"size":10}},"lsn":{"start":"0/2000028","stop":"0/2000100"},"timestamp":{"start":1796032800,"stop":1796032810},"database":{"id":1}},
  {"label":"20261130-100000F_20261130-110000I","type":"incr","error":true,"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},
   "info":{"size":100,"repository":{"size":1}},"lsn":{"start":"0/5000028","stop":"0/5000100"},"timestamp":{"start":1796036400,"stop":1796036410},"database":{"id":1}}]}]`

func TestList(t *testing.T) {
	s, args := fake(t, infoJSON, "{}")
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "20261130-100000F_20261130-110000I" || list[1].StopLSN != "0/2000100" {
		t.Fatalf("List = %+v", list)
	}
	m := list[1]
	if m.Attributes[postgres.AttrSystemID] != "7713916233348892859" || m.Attributes[AttrArchiveID] != "15-1" || m.EngineVersion != "15" || m.Timeline != 1 || m.TakenAt.Unix() != 1796032810 {
		t.Errorf("metadata = %+v", m)
	}
	if list[0].Attributes[AttrError] != "true" {
		t.Errorf("page checksum errors not recorded: %+v", list[0].Attributes)
	}
	b, _ := os.ReadFile(args)
	for _, want := range []string{"--stanza=main", "--config=/etc/pgbackrest/main.conf", "--repo1-path=/repo", "--log-level-file=off", "info --output=json"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pgbackrest ran with %q, want %s", b, want)
		}
	}
	// A time target lists only backups that ended before it.
	s.Recovery, _ = postgres.ParseRecoveryTarget("2026-11-30T10:30:00Z")
	if list, _ := s.List(context.Background()); len(list) != 1 || list[0].ID != "20261130-100000F" {
		t.Errorf("with a target time, List = %+v", list)
	}
	if _, err := s.Get(context.Background(), "nope"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Get of an unknown label = %v", err)
	}
}

func TestMissingBinary(t *testing.T) {
	s := &Source{Stanza: "main", Command: filepath.Join(t.TempDir(), "pgbackrest")}
	_, err := s.List(context.Background())
	if !errors.Is(err, ErrNoBinary) || !errors.Is(err, drill.ErrPlatform) {
		t.Errorf("List without pgbackrest = %v, want ErrNoBinary (a platform error)", err)
	}
}

func TestArchiveFiles(t *testing.T) {
	s, _ := fake(t, infoJSON, `{".":{"type":"path"},"15-1/0000000100000000":{"type":"path"},
 "15-1/0000000100000000/000000010000000000000002-84ff024ce3a5d379628573acc2bad8cddc4f7cd5.gz":{"type":"file","size":16464,"time":1796036093},
 "15-1/0000000100000000/000000010000000000000002.00000028.backup":{"type":"file","size":371,"time":1796036093},
 "15-1/0000000100000000/000000010000000000000003.partial-0123456789012345678901234567890123456789.gz":{"type":"file","size":5,"time":1796036093},
 "15-1/00000002.history":{"type":"file","size":40,"time":1796036093},
 "archive.info":{"type":"file","size":253,"time":1796036093}}`)
	files, err := s.archiveFiles(context.Background(), "15-1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	got := strings.Join(sorted(names), " ")
	if want := "000000010000000000000002 000000010000000000000002.00000028.backup 000000010000000000000003.partial 00000002.history"; got != want {
		t.Errorf("archive files = %s, want %s", got, want)
	}
	if _, err := s.archiveFiles(context.Background(), ""); err == nil {
		t.Error("a backup without an archive id was listed")
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func TestTargetArgs(t *testing.T) {
	for in, want := range map[string]string{
		"latest":               "--type=default",
		"immediate":            "--type=immediate --target-action=promote",
		"0/3000028":            "--type=lsn --target=0/3000028 --target-action=promote",
		"2026-11-30T10:00:00Z": "--type=time --target=2026-11-30 10:00:00+00 --target-action=promote",
	} {
		tg, err := postgres.ParseRecoveryTarget(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(targetArgs(tg), " "); got != want {
			t.Errorf("targetArgs(%s) = %s, want %s", in, got, want)
		}
	}
}
