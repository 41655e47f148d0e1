package local_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

const walSegment = "000000010000000000000004"

var (
	testNow   = time.Date(2026, 11, 21, 16, 20, 0, 0, time.UTC)
	testLabel = []byte("START WAL LOCATION: 0/4000028 (file " + walSegment + ")\nCHECKPOINT LOCATION: 0/4000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-21 16:20:03 UTC\nLABEL: firedrill orders\nSTART TIMELINE: 1\n")
)

// fakeFreezer is an engine.Freezer that records its calls and fails where told.
type fakeFreezer struct {
	mu                     sync.Mutex
	freezes, thaws, closes int
	freezeErr, thawErr     error
	closeErr               error
	onFreeze               func()
	frozen                 *engine.Frozen
	// closeCtxErr is what the context Close was given said (ctx.Err()) at the last Close.
	closeCtxErr error
}

func (f *fakeFreezer) Freeze(context.Context) error {
	f.mu.Lock()
	f.freezes++
	hook := f.onFreeze
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return f.freezeErr
}

func (f *fakeFreezer) Thaw(context.Context) (*engine.Frozen, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.thaws++
	if f.thawErr != nil {
		return nil, f.thawErr
	}
	return f.frozen, nil
}

func (f *fakeFreezer) Close(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	f.closeCtxErr = ctx.Err()
	return f.closeErr
}

func (f *fakeFreezer) calls() (freezes, thaws, closes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.freezes, f.thaws, f.closes
}

// newFreezer returns a freezer whose backup ends at takenAt and needs the WAL segment.
func newFreezer(takenAt time.Time) *fakeFreezer {
	return &fakeFreezer{frozen: &engine.Frozen{
		StartedAt: takenAt.Add(-2 * time.Second),
		EndedAt:   takenAt,
		Attributes: map[string]string{
			postgres.AttrStartLSN: "0/4000028", postgres.AttrStopLSN: "0/4000138", postgres.AttrTimeline: "1",
			postgres.AttrServerVersion: "15.18",
		},
		Files: map[string][]byte{
			postgres.BackupLabelFile:   testLabel,
			postgres.TablespaceMapFile: []byte("16384 /srv/tblspc\n"),
		},
		// The history file of timeline 1 never exists: it is optional.
		AfterThaw: []string{"pg_wal/" + walSegment, "pg_wal/00000001.history"},
	}}
}

// fixture is a fake live data directory with a tablespace outside it.
type fixture struct {
	dataDir    string
	tablespace string
	// copied maps each file a snapshot must hold (its manifest path) to its content.
	copied map[string]string
	// excluded are data-directory paths a snapshot must leave out.
	excluded []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	fx := &fixture{dataDir: filepath.Join(root, "data"), tablespace: filepath.Join(root, "tblspc")}
	block := strings.Repeat("\x00\x01page", 1638) // a few KB, not all text
	data := map[string]string{
		"PG_VERSION":                    "15\n",
		"global/pg_control":             block[:8192],
		"base/1/1234":                   block + "heap",
		"base/1/1234_fsm":               "fsm",
		"postgresql.auto.conf":          "# empty\n",
		"pg_wal/" + walSegment:          strings.Repeat("W", 4096),
		"postmaster.pid":                "4242\n/var/lib/pg\n",
		"backup_label":                  "stale label\n",
		"pg_wal/archive_status/x.ready": "",
		"pg_stat_tmp/global.stat":       "stats",
		"base/pgsql_tmp/pgsql_tmp1.0":   "temp",
	}
	ts := map[string]string{"PG_15_202209061/5/16385": "tablespace heap"}
	write := func(root string, files map[string]string) {
		for rel, content := range files {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(fx.dataDir, data)
	write(fx.tablespace, ts)
	if err := os.MkdirAll(filepath.Join(fx.dataDir, "pg_tblspc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fx.tablespace, filepath.Join(fx.dataDir, "pg_tblspc", "16384")); err != nil {
		t.Fatal(err)
	}
	fx.copied = map[string]string{
		"external/pg_tblspc_16384/PG_15_202209061/5/16385": ts["PG_15_202209061/5/16385"],
		"files/backup_label":   string(testLabel),
		"files/tablespace_map": "16384 /srv/tblspc\n",
	}
	for _, rel := range []string{"PG_VERSION", "global/pg_control", "base/1/1234", "base/1/1234_fsm", "postgresql.auto.conf", "pg_wal/" + walSegment} {
		fx.copied["data/"+rel] = data[rel]
	}
	fx.excluded = []string{"postmaster.pid", "backup_label", "pg_wal/archive_status/x.ready", "pg_stat_tmp/global.stat", "base/pgsql_tmp/pgsql_tmp1.0"}
	return fx
}

func newRepo(t *testing.T) *local.Repository {
	t.Helper()
	r := local.New(filepath.Join(t.TempDir(), "repo"), 2)
	r.Fsync = false
	r.Now = func() time.Time { return testNow }
	return r
}

func (fx *fixture) request(fr engine.Freezer) local.CreateRequest {
	return local.CreateRequest{
		Target: "orders", Engine: "postgres", Mode: "online", BatchID: "batch-1",
		DataDir: fx.dataDir, Freezer: fr, Rule: postgres.CopyRule,
		Attributes: map[string]string{"dataDirectory": "/var/lib/pg", postgres.AttrServerVersion: "overridden by the freezer"},
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readManifest(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, rel, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("malformed manifest line %q", sc.Text())
		}
		out[rel] = sum
	}
	return out
}

// repoEntries lists a repository directory's names.
func repoEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreate(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	fr := newFreezer(testNow.Add(5 * time.Second))
	var statusMu sync.Mutex
	var statuses []string
	req := fx.request(fr)
	req.Status = func(s string) { statusMu.Lock(); statuses = append(statuses, s); statusMu.Unlock() }

	meta, err := repo.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if f, th, c := fr.calls(); f != 1 || th != 1 || c != 1 {
		t.Errorf("freezer calls: %d freezes, %d thaws, %d closes; want 1 each", f, th, c)
	}
	snapDir := repo.Path(meta.ID)

	t.Run("metadata", func(t *testing.T) {
		tests := []struct {
			name      string
			got, want any
		}{
			{"target", meta.Target, "orders"},
			{"engine", meta.Engine, "postgres"},
			{"mode", meta.Mode, "online"},
			{"driver", meta.Driver, local.DriverName},
			{"batch", meta.BatchID, "batch-1"},
			{"engineVersion", meta.EngineVersion, "15.18"},
			{"takenAt", meta.TakenAt, testNow.Add(5 * time.Second)},
			{"startedAt", meta.StartedAt, testNow},
			{"finishedAt", meta.FinishedAt, testNow},
			{"frozenSeconds", meta.FrozenSeconds, 2.0},
			{"startLsn", meta.StartLSN, "0/4000028"},
			{"stopLsn", meta.StopLSN, "0/4000138"},
			{"timeline", meta.Timeline, 1},
			{"files", meta.Files, len(fx.copied)},
			{"attribute from the request", meta.Attributes["dataDirectory"], "/var/lib/pg"},
			{"freezer's attribute wins", meta.Attributes[postgres.AttrServerVersion], "15.18"},
			{"id prefix", strings.HasPrefix(meta.ID, "20261121T162000Z-"), true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.got != tt.want {
					t.Errorf("got %v, want %v", tt.got, tt.want)
				}
			})
		}
		var size int64
		for _, c := range fx.copied {
			size += int64(len(c))
		}
		if meta.SizeBytes != size {
			t.Errorf("SizeBytes = %d, want %d", meta.SizeBytes, size)
		}
		wantLinks := []snapshot.Link{{Path: "pg_tblspc/16384", Stored: "pg_tblspc_16384", Target: fx.tablespace}}
		if !slices.Equal(meta.Links, wantLinks) {
			t.Errorf("Links = %+v, want %+v", meta.Links, wantLinks)
		}
	})

	t.Run("manifest", func(t *testing.T) {
		mb, err := os.ReadFile(filepath.Join(snapDir, "manifest.sha256"))
		if err != nil {
			t.Fatal(err)
		}
		if sha(mb) != meta.ManifestSHA256 {
			t.Errorf("ManifestSHA256 = %s, the manifest's is %s", meta.ManifestSHA256, sha(mb))
		}
		lines := strings.Split(strings.TrimSuffix(string(mb), "\n"), "\n")
		if !sort.SliceIsSorted(lines, func(i, j int) bool {
			return strings.SplitN(lines[i], "  ", 2)[1] < strings.SplitN(lines[j], "  ", 2)[1]
		}) {
			t.Errorf("manifest is not sorted by path:\n%s", mb)
		}
		manifest := readManifest(t, filepath.Join(snapDir, "manifest.sha256"))
		var got, want []string
		for rel := range manifest {
			got = append(got, rel)
		}
		for rel := range fx.copied {
			want = append(want, rel)
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("manifest paths:\n got %q\nwant %q", got, want)
		}
		for rel, content := range fx.copied {
			if manifest[rel] != sha([]byte(content)) {
				t.Errorf("manifest sha256 of %s = %s, want %s", rel, manifest[rel], sha([]byte(content)))
			}
			stored, err := os.ReadFile(filepath.Join(snapDir, filepath.FromSlash(rel)))
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				continue
			}
			if string(stored) != content {
				t.Errorf("%s is not stored byte for byte", rel)
			}
		}
	})

	t.Run("excluded", func(t *testing.T) {
		for _, rel := range fx.excluded {
			if _, err := os.Stat(filepath.Join(snapDir, "data", filepath.FromSlash(rel))); !os.IsNotExist(err) {
				t.Errorf("%s is in the snapshot (%v)", rel, err)
			}
		}
		for _, dir := range []string{"pg_wal", "pg_stat_tmp", "pg_tblspc"} {
			if fi, err := os.Stat(filepath.Join(snapDir, "data", dir)); err != nil || !fi.IsDir() {
				t.Errorf("directory %s is not kept (%v)", dir, err)
			}
		}
	})

	t.Run("freezer files byte for byte", func(t *testing.T) {
		for name, want := range fr.frozen.Files {
			got, err := os.ReadFile(filepath.Join(snapDir, "files", name))
			if err != nil || string(got) != string(want) {
				t.Errorf("files/%s = %q, %v; want %q", name, got, err, want)
			}
		}
	})

	t.Run("repository holds the snapshot and its lock only", func(t *testing.T) {
		if got, want := repoEntries(t, repo.Dir), []string{".lock", meta.ID}; !slices.Equal(got, want) {
			t.Errorf("repository entries = %q, want %q", got, want)
		}
	})

	t.Run("status", func(t *testing.T) {
		statusMu.Lock()
		defer statusMu.Unlock()
		for _, want := range []string{"starting backup mode", "ending backup mode", "copying 1 WAL files", "writing manifest and metadata"} {
			if !slices.Contains(statuses, want) {
				t.Errorf("status never said %q: %q", want, statuses)
			}
		}
	})

	t.Run("Get", func(t *testing.T) {
		got, err := repo.Get(context.Background(), meta.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.ID != meta.ID || !got.TakenAt.Equal(meta.TakenAt) || got.ManifestSHA256 != meta.ManifestSHA256 || got.Files != meta.Files {
			t.Errorf("Get = %+v, want %+v", got, meta)
		}
	})
}

func TestListNewestFirst(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	if got, err := repo.List(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("List of a missing repository = %v, %v; want none", got, err)
	}
	// Taken in this order, but the first has the latest recovery point.
	takenAt := []time.Time{testNow.Add(3 * time.Hour), testNow, testNow.Add(time.Hour)}
	ids := map[time.Time]string{}
	for _, at := range takenAt {
		m, err := repo.Create(context.Background(), fx.request(newFreezer(at)))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		ids[at] = m.ID
	}
	got, err := repo.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := []string{ids[takenAt[0]], ids[takenAt[2]], ids[takenAt[1]]}
	var gotIDs []string
	for _, m := range got {
		gotIDs = append(gotIDs, m.ID)
	}
	if !slices.Equal(gotIDs, want) {
		t.Errorf("List = %q, want newest first %q", gotIDs, want)
	}
}

func TestListIgnoresIncompleteAndForeignFolders(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	meta, err := repo.Create(context.Background(), fx.request(newFreezer(testNow)))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	good, err := os.ReadFile(filepath.Join(repo.Path(meta.ID), "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		meta []byte // nil: no meta.json
	}{
		{"20261121T170000Z-aaaaaa", nil},
		{".partial-20261121T170000Z-bbbbbb", []byte(strings.ReplaceAll(string(good), meta.ID, ".partial-20261121T170000Z-bbbbbb"))},
		{".partial-deleting-" + meta.ID, good},
		{"copy-of-" + meta.ID, good}, // its meta.json names another id
		{"20261121T180000Z-cccccc", []byte("{not json")},
	}
	for _, tt := range tests {
		dir := filepath.Join(repo.Dir, tt.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if tt.meta != nil {
			if err := os.WriteFile(filepath.Join(dir, "meta.json"), tt.meta, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(repo.Dir, "20261121T190000Z-dddddd"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := repo.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != 1 || got[0].ID != meta.ID {
		t.Errorf("List = %+v, want only %s", got, meta.ID)
	}
	for _, tt := range tests {
		t.Run("Get "+tt.name, func(t *testing.T) {
			if _, err := repo.Get(context.Background(), tt.name); !errors.Is(err, snapshot.ErrNotFound) {
				t.Errorf("Get(%q) error = %v, want ErrNotFound", tt.name, err)
			}
		})
	}

	t.Run("next Create removes stale partial folders", func(t *testing.T) {
		if _, err := repo.Create(context.Background(), fx.request(newFreezer(testNow))); err != nil {
			t.Fatalf("Create: %v", err)
		}
		for _, e := range repoEntries(t, repo.Dir) {
			if strings.HasPrefix(e, ".partial-") {
				t.Errorf("%s is left in the repository", e)
			}
		}
	})
}

func TestGetInvalidIDs(t *testing.T) {
	repo := newRepo(t)
	if err := os.MkdirAll(repo.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../x", "..", ".", "a/b", `a\b`, "/etc", ".lock", "20261121T162000Z-000000"} {
		t.Run(id, func(t *testing.T) {
			_, err := repo.Get(context.Background(), id)
			if !errors.Is(err, snapshot.ErrNotFound) {
				t.Errorf("Get(%q) error = %v, want ErrNotFound", id, err)
			}
			if err := repo.Delete(context.Background(), id); !errors.Is(err, snapshot.ErrNotFound) {
				t.Errorf("Delete(%q) error = %v, want ErrNotFound", id, err)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	a, err := repo.Create(context.Background(), fx.request(newFreezer(testNow)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.Create(context.Background(), fx.request(newFreezer(testNow.Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Delete(context.Background(), a.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := repo.Get(context.Background(), a.ID); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if got, want := repoEntries(t, repo.Dir), []string{".lock", b.ID}; !slices.Equal(got, want) {
		t.Errorf("repository entries = %q, want %q", got, want)
	}
	if err := repo.Delete(context.Background(), a.ID); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
}

func TestCreateFailures(t *testing.T) {
	errFreeze := errors.New("pg_backup_start failed")
	errThaw := errors.New("pg_backup_stop failed")
	errClose := errors.New("closing the session failed")
	tests := []struct {
		name string
		// setup adjusts the freezer and the request; cancel cancels the Create's context.
		setup   func(fr *fakeFreezer, req *local.CreateRequest, cancel context.CancelFunc)
		wantIs  error
		wantMsg string
		thaws   int
	}{
		{
			name:   "freeze fails",
			setup:  func(fr *fakeFreezer, _ *local.CreateRequest, _ context.CancelFunc) { fr.freezeErr = errFreeze },
			wantIs: errFreeze,
		},
		{
			name:   "thaw fails",
			setup:  func(fr *fakeFreezer, _ *local.CreateRequest, _ context.CancelFunc) { fr.thawErr = errThaw },
			wantIs: errThaw, thaws: 1,
		},
		{
			name: "cancelled once the copy starts",
			setup: func(_ *fakeFreezer, req *local.CreateRequest, cancel context.CancelFunc) {
				req.Status = func(s string) {
					if s == "copying the data directory" {
						cancel()
					}
				}
			},
			wantIs: context.Canceled, wantMsg: "while copying the data directory",
		},
		{
			name: "cancelled in backup mode",
			setup: func(fr *fakeFreezer, _ *local.CreateRequest, cancel context.CancelFunc) {
				fr.onFreeze = cancel
			},
			wantIs: context.Canceled,
		},
		{
			name: "WAL segment gone after the thaw",
			setup: func(fr *fakeFreezer, _ *local.CreateRequest, _ context.CancelFunc) {
				fr.frozen.AfterThaw = append(fr.frozen.AfterThaw, "pg_wal/000000010000000000000005")
			},
			wantIs: os.ErrNotExist, wantMsg: "pg_wal/000000010000000000000005 is gone", thaws: 1,
		},
		{
			name:   "close fails",
			setup:  func(fr *fakeFreezer, _ *local.CreateRequest, _ context.CancelFunc) { fr.closeErr = errClose },
			wantIs: errClose, thaws: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			repo := newRepo(t)
			fr := newFreezer(testNow)
			req := fx.request(fr)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.setup(fr, &req, cancel)

			meta, err := repo.Create(ctx, req)
			if err == nil {
				t.Fatalf("Create succeeded: %+v", meta)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v, want errors.Is %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
			}
			if f, th, c := fr.calls(); f != 1 || th != tt.thaws || c < 1 {
				t.Errorf("freezer calls: %d freezes, %d thaws, %d closes; want 1, %d, at least 1", f, th, c, tt.thaws)
			}
			if got, want := repoEntries(t, repo.Dir), []string{".lock"}; !slices.Equal(got, want) {
				t.Errorf("repository entries = %q, want %q", got, want)
			}
			if got, err := repo.List(context.Background()); err != nil || len(got) != 0 {
				t.Errorf("List = %v, %v; want none", got, err)
			}
		})
	}
}

func TestCreateMissingDataDir(t *testing.T) {
	repo := newRepo(t)
	fr := newFreezer(testNow)
	req := (&fixture{dataDir: filepath.Join(t.TempDir(), "missing")}).request(fr)
	if _, err := repo.Create(context.Background(), req); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create error = %v, want ErrNotExist", err)
	}
	if f, _, c := fr.calls(); f != 0 || c != 1 {
		t.Errorf("freezer calls: %d freezes, %d closes; want 0 and 1", f, c)
	}
}

func TestCreateWhileBusy(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	first := newFreezer(testNow)
	second := newFreezer(testNow)
	var busyErr, deleteErr error
	first.onFreeze = func() {
		// Another snapshot of the same repository while this one holds the lock.
		_, busyErr = repo.Create(context.Background(), fx.request(second))
	}
	meta, err := repo.Create(context.Background(), fx.request(first))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !errors.Is(busyErr, local.ErrBusy) {
		t.Errorf("concurrent Create error = %v, want ErrBusy", busyErr)
	}
	if f, _, c := second.calls(); f != 0 || c != 1 {
		t.Errorf("second freezer: %d freezes, %d closes; want 0 and 1", f, c)
	}
	// Delete waits for no one either.
	first.onFreeze = func() { deleteErr = repo.Delete(context.Background(), meta.ID) }
	if _, err := repo.Create(context.Background(), fx.request(first)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !errors.Is(deleteErr, local.ErrBusy) {
		t.Errorf("Delete during Create error = %v, want ErrBusy", deleteErr)
	}
}

func TestClone(t *testing.T) {
	fx := newFixture(t)
	repo := newRepo(t)
	fr := newFreezer(testNow)
	meta, err := repo.Create(context.Background(), fx.request(fr))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	dest := filepath.Join(t.TempDir(), "clone")
	res, err := repo.Clone(context.Background(), meta.ID, dest, nil)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if len(res.Mismatches) != 0 {
		t.Errorf("Mismatches = %q, want none", res.Mismatches)
	}
	if res.Verified == 0 || res.Verified != meta.Files {
		t.Errorf("Verified = %d, want every file of the manifest (%d)", res.Verified, meta.Files)
	}
	if res.DataDir != filepath.Join(dest, "data") {
		t.Errorf("DataDir = %q, want %q", res.DataDir, filepath.Join(dest, "data"))
	}
	for name, want := range fr.frozen.Files {
		if string(res.Files[name]) != string(want) {
			t.Errorf("Files[%s] = %q, want %q", name, res.Files[name], want)
		}
	}
	var bytes int64
	for rel, content := range fx.copied {
		if !strings.HasPrefix(rel, "files/") {
			bytes += int64(len(content))
		}
	}
	if res.Bytes != bytes {
		t.Errorf("Bytes = %d, want %d", res.Bytes, bytes)
	}

	t.Run("files reproduced", func(t *testing.T) {
		for rel, want := range fx.copied {
			dataRel, ok := strings.CutPrefix(rel, "data/")
			if !ok {
				continue
			}
			got, err := os.ReadFile(filepath.Join(res.DataDir, filepath.FromSlash(dataRel)))
			if err != nil || string(got) != want {
				t.Errorf("%s differs in the clone (%v)", dataRel, err)
			}
		}
		for _, rel := range fx.excluded {
			if _, err := os.Lstat(filepath.Join(res.DataDir, filepath.FromSlash(rel))); !os.IsNotExist(err) {
				t.Errorf("%s is in the clone (%v)", rel, err)
			}
		}
	})

	t.Run("tablespace link points at the clone", func(t *testing.T) {
		link := filepath.Join(res.DataDir, "pg_tblspc", "16384")
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatalf("pg_tblspc/16384 is not a symlink: %v", err)
		}
		want := filepath.Join(dest, "external", "pg_tblspc_16384")
		if target != want {
			t.Errorf("pg_tblspc/16384 -> %s, want %s", target, want)
		}
		if target == fx.tablespace {
			t.Errorf("pg_tblspc/16384 points at production's tablespace")
		}
		got, err := os.ReadFile(filepath.Join(link, "PG_15_202209061", "5", "16385"))
		if err != nil || string(got) != "tablespace heap" {
			t.Errorf("tablespace file through the link = %q, %v", got, err)
		}
		if got := res.Links["pg_tblspc/16384"]; got != want {
			t.Errorf("Links[pg_tblspc/16384] = %q, want %q", got, want)
		}
		if got := res.TablespaceLocations(); len(got) != 1 || got["16384"] != want {
			t.Errorf("TablespaceLocations() = %v, want 16384 -> %s", got, want)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		if _, err := repo.Clone(context.Background(), "20200101T000000Z-000000", filepath.Join(t.TempDir(), "c"), nil); !errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("Clone error = %v, want ErrNotFound", err)
		}
	})
}

func TestCloneReportsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, snapDir string)
		want   []string // prefixes of the mismatches, in order
	}{
		{
			name: "changed data file",
			damage: func(t *testing.T, snapDir string) {
				writeFile(t, filepath.Join(snapDir, "data", "base", "1", "1234"), "corrupted")
			},
			want: []string{"data/base/1/1234: sha256 "},
		},
		{
			name: "changed tablespace file",
			damage: func(t *testing.T, snapDir string) {
				writeFile(t, filepath.Join(snapDir, "external", "pg_tblspc_16384", "PG_15_202209061", "5", "16385"), "x")
			},
			want: []string{"external/pg_tblspc_16384/PG_15_202209061/5/16385: sha256 "},
		},
		{
			name: "changed backup_label",
			damage: func(t *testing.T, snapDir string) {
				writeFile(t, filepath.Join(snapDir, "files", "backup_label"), "START WAL LOCATION: forged")
			},
			want: []string{"files/backup_label: sha256 "},
		},
		{
			name: "missing file",
			damage: func(t *testing.T, snapDir string) {
				if err := os.Remove(filepath.Join(snapDir, "data", "pg_wal", walSegment)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"data/pg_wal/" + walSegment + ": missing from the snapshot"},
		},
		{
			name: "extra file",
			damage: func(t *testing.T, snapDir string) {
				writeFile(t, filepath.Join(snapDir, "data", "base", "1", "9999"), "planted")
			},
			want: []string{"data/base/1/9999: not in the manifest"},
		},
		{
			name: "edited manifest",
			damage: func(t *testing.T, snapDir string) {
				p := filepath.Join(snapDir, "manifest.sha256")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, p, string(b)+strings.Repeat("0", 64)+"  data/ghost\n")
			},
			want: []string{"data/ghost: missing from the snapshot", "manifest.sha256: differs from the checksum recorded in the metadata"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			repo := newRepo(t)
			meta, err := repo.Create(context.Background(), fx.request(newFreezer(testNow)))
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			tt.damage(t, repo.Path(meta.ID))
			res, err := repo.Clone(context.Background(), meta.ID, filepath.Join(t.TempDir(), "clone"), nil)
			if err != nil {
				t.Fatalf("Clone: %v (damage is a finding, not an error)", err)
			}
			if len(res.Mismatches) != len(tt.want) {
				t.Fatalf("Mismatches = %q, want %d starting with %q", res.Mismatches, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(res.Mismatches[i], w) {
					t.Errorf("Mismatches[%d] = %q, want prefix %q", i, res.Mismatches[i], w)
				}
			}
			if res.Verified == 0 {
				t.Errorf("Verified = 0, want the undamaged files counted")
			}
		})
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestExternalWALDirectory(t *testing.T) {
	// pg_wal as a symlink to another disk, as initdb --waldir makes it.
	fx := newFixture(t)
	walDir := filepath.Join(t.TempDir(), "wal")
	if err := os.Rename(filepath.Join(fx.dataDir, "pg_wal"), walDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(walDir, filepath.Join(fx.dataDir, "pg_wal")); err != nil {
		t.Fatal(err)
	}
	repo := newRepo(t)
	meta, err := repo.Create(context.Background(), fx.request(newFreezer(testNow)))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	manifest := readManifest(t, filepath.Join(repo.Path(meta.ID), "manifest.sha256"))
	if _, ok := manifest["external/pg_wal/"+walSegment]; !ok {
		t.Errorf("the WAL segment is not stored under external/pg_wal: %v", manifest)
	}
	if _, ok := manifest["external/pg_wal/archive_status/x.ready"]; ok {
		t.Errorf("archive_status was copied")
	}
	res, err := repo.Clone(context.Background(), meta.ID, filepath.Join(t.TempDir(), "clone"), nil)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if len(res.Mismatches) != 0 {
		t.Errorf("Mismatches = %q", res.Mismatches)
	}
	got, err := os.ReadFile(filepath.Join(res.DataDir, "pg_wal", walSegment))
	if err != nil || string(got) != strings.Repeat("W", 4096) {
		t.Errorf("WAL segment through the cloned pg_wal link: %v", err)
	}
}
