package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports/compliance"
	"github.com/firedrill/firedrill/reports/evidence"
)

// reportOptions are the flags of 'firedrill report'.
type reportOptions struct {
	from, to, target, format, out string
	keys                          []string
}

func newReportCmd(g *globals) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write the period report an auditor asks for, from the evidence records",
		Long: `report builds the report of a period (--from and --to are whole days, UTC, both included)
from the evidence records under history.evidenceDir: per target the objectives, drills performed
against those required (one per drillEvery), windows and months without a drill, pass rate,
worst and median RTO, RPO breaches, WAL archiving incidents, the 3-2-1 status over time and
open exceptions; every drill with a link to its record; failures with their findings and the
next passing drill; charts; which evidence supports which control (ISO 27001:2022 A.8.13,
SOC 2 A1.3, HIPAA 164.308(a)(7)(ii)(B)/(D), DORA art. 12), stated as evidence, not as a
certification; and every record used with its digest and whether its chain (and, with --key,
its signature) verified. The report carries its own SHA-256 digest. HTML is one page with no
script that prints cleanly; PDF is that page printed by headless Chromium (Debian's chromium).

` + exitCodesHelp + `
A report is written even when a chain is broken; the exit code is then 1.`,
		Example: `  firedrill report --from 2026-01-01 --to 2026-12-31 --format pdf --out drills-2026.pdf
  firedrill report --from 2026-10-01 --to 2026-12-31 --target orders --format md`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReport(cmd, g, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.from, "from", "", "first day of the period, YYYY-MM-DD (required)")
	fs.StringVar(&o.to, "to", "", "last day of the period, YYYY-MM-DD, included (required)")
	fs.StringVarP(&o.target, "target", "t", "", "only this target (default: every target)")
	fs.StringVar(&o.format, "format", "table", "html, pdf, md, json or table")
	fs.StringVar(&o.out, "out", "", "write the report to this file (default: standard output)")
	fs.StringArrayVar(&o.keys, "key", nil, "trusted public key (PEM) to check the records' signatures; repeat for several")
	cmd.AddCommand(newReportVerifyCmd(g))
	return cmd
}

func runReport(cmd *cobra.Command, g *globals, o reportOptions) error {
	format, err := compliance.ParseFormat(o.format)
	if err != nil {
		return usageError{err}
	}
	var days [2]time.Time // --from, --to
	for i, d := range []string{o.from, o.to} {
		if days[i], err = time.Parse(time.DateOnly, d); err != nil {
			return usageError{fmt.Errorf("--from and --to are days, YYYY-MM-DD: not %q", d)}
		}
	}
	from, to := days[0], days[1]
	if to.Before(from) {
		return usageError{fmt.Errorf("--to %s is before --from %s", o.to, o.from)}
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	targets, err := pickTargets(cfg, o.target)
	if err != nil {
		return err
	}
	var v *evidence.Verifier
	if len(o.keys) > 0 {
		if v, err = evidence.LoadVerifier(o.keys...); err != nil {
			return usageError{err}
		}
	}
	ctx := cmd.Context()
	store, records := evidence.NewDirStore(cfg.History.EvidenceDir, nil), map[string][]compliance.Stored{}
	verify, policies := &compliance.VerifyReport{}, []compliance.TargetPolicy{}
	for _, t := range targets {
		policies = append(policies, targetPolicy(t))
		if records[t.Name], err = store.List(ctx, t.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("while reading the evidence of %s: %w", t.Name, err)
		}
		tv, err := evidence.VerifyTarget(ctx, store, t.Name, v)
		if err != nil {
			return fmt.Errorf("while verifying the evidence of %s: %w", t.Name, err)
		}
		verify.Targets = append(verify.Targets, tv)
	}
	rep, err := compliance.Build(ctx, records, verify, compliance.Options{From: from, To: to.AddDate(0, 0, 1), Targets: policies})
	if err != nil {
		return usageError{err}
	}
	var w io.Writer = g.stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return usageError{fmt.Errorf("--out: %w", err)}
		}
		defer f.Close()
		w = f
	}
	if err := compliance.Write(ctx, w, rep, format); err != nil {
		if o.out != "" {
			_ = os.Remove(o.out) // no half-written report
		}
		return err
	}
	if o.out != "" {
		fmt.Fprintf(g.stderr, "wrote %s (report digest sha256:%s)\n", o.out, rep.Digest)
	}
	if !verify.OK() {
		for _, t := range verify.Targets {
			if !t.OK {
				fmt.Fprintf(g.stderr, "firedrill: evidence of %s is broken at record %d (%s): %s\n", t.Target, t.First.Seq, t.First.Path, t.First.Problem)
			}
		}
		return errChecksFailed
	}
	return nil
}

// targetPolicy is what the report needs of a configured target.
func targetPolicy(t policy.Target) compliance.TargetPolicy {
	p := compliance.TargetPolicy{Name: t.Name, Engine: t.Engine, RPO: t.Objectives.RPO.Duration,
		RTO: t.Objectives.RTO.Duration, DrillEvery: t.Objectives.DrillEvery.Duration}
	if c := t.Audit.Copies; c.MinCopies > 0 {
		p.CopyPolicy = fmt.Sprintf("%d copies, %d media, %d offsite, %d immutable", c.MinCopies, c.MinMedia, deref(c.MinOffsite), deref(c.MinImmutable))
	}
	return p
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
