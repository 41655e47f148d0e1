package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/evidence"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// evidenceStore is the configured evidence store (history.evidenceDir), signing with
// history.signingKey when set.
func evidenceStore(cfg *policy.Config) (*evidence.DirStore, error) {
	var signer *evidence.Signer
	if cfg.History.SigningKey != "" {
		s, err := evidence.LoadSigner(cfg.History.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("while loading history.signingKey: %w", err)
		}
		signer = s
	}
	return evidence.NewDirStore(cfg.History.EvidenceDir, signer), nil
}

// evidenceSink records each drill as a chained (and, with a key, signed) evidence record.
type evidenceSink struct{ cfg *policy.Config }

func (e evidenceSink) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	rec := evidence.DrillRecord(r)
	return appendEvidence(ctx, e.cfg, &rec)
}

// recordAudit records one target's audit findings.
func recordAudit(ctx context.Context, cfg *policy.Config, target string, started time.Time, fs []checks.Finding) error {
	rec := evidence.Record{SchemaVersion: evidence.SchemaVersion, Kind: evidence.KindAudit, ID: runID(started),
		Target: target, StartedAt: started.UTC(), FinishedAt: time.Now().UTC(), Status: evidence.AuditStatus(fs), Audit: fs}
	return appendEvidence(ctx, cfg, &rec)
}

// recordSnapshot records one target's snapshot outcome.
func recordSnapshot(ctx context.Context, cfg *policy.Config, r *reports.SnapshotResult, started time.Time) error {
	rec := evidence.Record{SchemaVersion: evidence.SchemaVersion, Kind: evidence.KindSnapshot, ID: runID(started),
		Target: r.Target, StartedAt: started.UTC(), FinishedAt: time.Now().UTC(), Status: evidence.StatusPass, Snapshot: r}
	if r.Snapshot != nil {
		rec.ID = r.Snapshot.ID
	}
	if r.Status == reports.SnapshotResultError || r.Snapshot == nil {
		rec.Status = evidence.StatusError
	}
	return appendEvidence(ctx, cfg, &rec)
}

// appendEvidence fills in where, the tool, the configuration's digest and the target's
// objectives, and appends the record.
func appendEvidence(ctx context.Context, cfg *policy.Config, rec *evidence.Record) error {
	store, err := evidenceStore(cfg)
	if err != nil {
		return err
	}
	rec.ToolVersion, rec.ConfigDigest, rec.Where = version, configDigest(cfg.File), where()
	if t, ok := cfg.Target(rec.Target); ok {
		rec.Objectives = evidence.Objectives{RPOSeconds: t.Objectives.RPO.Seconds(), RTOSeconds: t.Objectives.RTO.Seconds(),
			DrillEverySeconds: t.Objectives.DrillEvery.Seconds()}
	}
	ctx = context.WithoutCancel(ctx)
	if have, err := store.List(ctx, rec.Target); err == nil && len(have) == 0 {
		// The first record of a target: its earlier drills (history.dir) start the chain.
		if _, err := evidence.ImportDrillHistory(ctx, store, cfg.History.Dir, rec.Target); err != nil {
			return fmt.Errorf("while importing %s's drill history into the evidence chain: %w", rec.Target, err)
		}
		if rec.Kind == evidence.KindDrill {
			if have, err = store.List(ctx, rec.Target); err == nil {
				for _, h := range have {
					if h.Record.Kind == evidence.KindDrill && h.Record.ID == rec.ID {
						return nil // imported with the history
					}
				}
			}
		}
	}
	if _, err := store.Append(ctx, rec); err != nil {
		return fmt.Errorf("while recording the %s's evidence in %s: %w", rec.Kind, cfg.History.EvidenceDir, err)
	}
	return nil
}

func configDigest(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// where says where the run happened: the host, and in a pod its namespace and name.
func where() map[string]string {
	w := map[string]string{}
	if h, err := os.Hostname(); err == nil {
		w["host"] = h
	}
	for key, env := range map[string]string{"namespace": "POD_NAMESPACE", "pod": "POD_NAME", "cluster": "FIREDRILL_CLUSTER"} {
		if v := os.Getenv(env); v != "" {
			w[key] = v
		}
	}
	return w
}

func runID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// snapshotEvidence is the snapshot runner's sink: one evidence record per target's snapshot
// (a group's: one per member).
type snapshotEvidence struct {
	cfg     *policy.Config
	started time.Time
}

func (s snapshotEvidence) Snapshot(ctx context.Context, r snapshot.Result) error {
	return recordSnapshot(ctx, s.cfg, &r, s.started)
}

func (s snapshotEvidence) Group(ctx context.Context, g *take.GroupResult) error {
	var errs []error
	for i := range g.Snapshots {
		m := g.Snapshots[i]
		r := snapshot.Result{Target: m.Target, Status: g.Status, Error: g.Error, Snapshot: &m}
		errs = append(errs, recordSnapshot(ctx, s.cfg, &r, s.started))
	}
	return errors.Join(errs...)
}
