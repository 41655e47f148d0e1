package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/restore/drill"
	_ "github.com/firedrill/firedrill/restore/drill/builtin" // the engines drills run for besides PostgreSQL
	"github.com/firedrill/firedrill/restore/runtime/docker"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/local"
	snaprun "github.com/firedrill/firedrill/restore/snapshot/run"
)

// repository builds the snapshot repository of a target.
func repository(t *policy.Target) *local.Repository {
	return local.NewForTarget(t.Snapshot.Local.Repository, t.Name, t.Snapshot.Local.Parallel)
}

// drillOptions maps a configured target to a drill.
func drillOptions(t *policy.Target, snapshotID string, keep bool) drill.Options {
	return drill.Options{
		Target: t.Name, Engine: t.Engine, Driver: t.Snapshot.Driver, SnapshotID: snapshotID,
		RTO: t.Objectives.RTO.Duration, RPO: t.Objectives.RPO.Duration,
		Checks: t.Checks, Keep: keep,
		Runtime: drill.RuntimeOptions{
			Kind: t.Restore.Runtime, Docker: dockerOptions(t.Restore.Docker),
			BinDir: t.Restore.Local.BinDir, ScratchDir: t.Restore.Local.ScratchDir, RunAsUser: t.Restore.Local.RunAsUser,
			Listen: t.Restore.Local.Listen, IsolateNetwork: *t.Restore.Local.IsolateNetwork, StartTimeout: t.Restore.Local.StartTimeout.Duration,
		},
	}
}

// runtimes are the places a throwaway can run, by restore.runtime: one line per runtime.
func runtimes() map[string]drill.RuntimeFactory {
	r := drill.DefaultRuntimes()
	r[docker.Name] = docker.Factory
	return r
}

// dockerOptions maps restore.docker (validated at load).
func dockerOptions(d policy.DockerRuntime) drill.DockerOptions {
	mem, _ := d.MemoryBytes()
	return drill.DockerOptions{Image: d.Image, UID: d.UID, MemoryBytes: mem, NanoCPUs: d.NanoCPUs()}
}

// productionPaths are the production paths config names, for the drill's sandbox to mask and
// its isolation probe to look for: the data directory, the snapshot repository, the DSN's unix
// socket directory, the history directory, the configuration file and its directory, and the
// auditor's directory locations (WAL archives, dumps). The DSN itself is never kept.
func productionPaths(cfg *policy.Config, t *policy.Target) []string {
	paths := []string{t.Snapshot.Local.DataDir, t.Snapshot.Local.Repository, cfg.History.Dir}
	if t.Restore.Source.ListsBackups() { // the backups (and the WAL archive): probed, never shown
		paths = append(paths, t.Restore.Source.Dir, t.Restore.Source.Archive, t.Restore.Source.RepoPath)
	}
	if cfg.File != "" {
		paths = append(paths, cfg.File, filepath.Dir(cfg.File))
	}
	if dsn, err := t.DSN(); err == nil {
		if pc, err := pgconn.ParseConfig(dsn); err == nil {
			hosts := []string{pc.Host}
			for _, f := range pc.Fallbacks {
				hosts = append(hosts, f.Host)
			}
			for _, h := range hosts {
				if strings.HasPrefix(h, "/") {
					paths = append(paths, h)
				}
			}
		}
	}
	for _, l := range cfg.Locations {
		if l.Path != "" {
			paths = append(paths, l.Path)
		}
	}
	out := paths[:0]
	for _, p := range paths {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			out = append(out, abs)
		}
	}
	return out
}

// takeSnapshot takes one snapshot of a configured target (clients built for this call only).
func takeSnapshot(ctx context.Context, t *policy.Target, pr progress.Reporter, log *slog.Logger) (*snapshot.Metadata, error) {
	return takeSnapshotWith(ctx, newClients(), t, pr, log)
}

// takeSnapshotWith takes one snapshot of a configured target with clients built once.
func takeSnapshotWith(ctx context.Context, cl *clients, t *policy.Target, pr progress.Reporter, log *slog.Logger) (*snapshot.Metadata, error) {
	st := snapTarget(t)
	return snaprun.Take(ctx, cl, &st, pr, log)
}

// runDrill drills one configured target and records the result in the history (the demo's
// drill: pr is the demo's, which it ends itself).
func runDrill(ctx context.Context, cfg *policy.Config, t *policy.Target, snapshotID string, keep bool, pr progress.Reporter, log *slog.Logger) (*reports.DrillResult, error) {
	shared := func() drill.Progress { return struct{ drill.Progress }{pr} } // without Done
	b, err := drill.RunTargets(ctx, []drill.Options{targetDrill(cfg, t, snapshotID, keep)}, drillFactory(cfg, shared, log), history.New(cfg.History.Dir))
	if err != nil || len(b.Results) == 0 {
		return nil, err
	}
	return b.Results[0], b.RecordErr
}

// resultsErr turns drill statuses into the command's error (and so its exit code).
func resultsErr(results []*reports.DrillResult) error {
	statuses := make([]reports.Status, 0, len(results))
	for _, r := range results {
		statuses = append(statuses, r.Status)
	}
	switch reports.Overall(statuses...) {
	case reports.StatusFail:
		return errChecksFailed
	case reports.StatusError:
		return errCouldNotCheck
	}
	return nil
}
