package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/render"
	"github.com/firedrill/firedrill/restore/demo"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		keep    bool
		scale   int
		runtime string
		image   string
		engine  string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show the whole pipeline on a throwaway local PostgreSQL",
		Long: `Show firedrill's whole pipeline on one machine, with nothing but PostgreSQL server binaries:

  1. create a "production" PostgreSQL in a temporary sandbox (data checksums on, WAL archiving
     to a local directory, a pgbench dataset and an orders table with timestamps);
  2. take an online snapshot while pgbench writes to it;
  3. run a drill on the newest snapshot: clone, throwaway server, amcheck, checksums, row
     counts, SQL assertions (the pgbench balance invariant), freshness, RTO;
  4. audit the live estate (WAL archiving, backup age and size, drill recency);
  5. print the report and remove the sandbox. With --keep the sandbox stays, with a
     firedrill.yaml the other commands run with, and its production server keeps running:
     the commands that stop and start it are printed.

With --engine redis the production database is a Redis (users, a leaderboard, sessions, a
last-write key) snapshotted with BGSAVE and drilled with redis-check-rdb, key counts against
those recorded at BGSAVE time, a sample of keys read back, command assertions and freshness.
With --engine mariadb it is a MariaDB (a shop schema) snapshotted with mariadb-backup and
drilled with mariadb-backup --prepare, InnoDB recovery, CHECK TABLE ... EXTENDED, row counts, SQL
and freshness. Both run on the local runtime.

With --runtime docker the drill's throwaway runs in a container of a Docker engine (--image;
default postgres:<major>); without a reachable engine the demo is skipped, exit 3.

` + exitCodesHelp,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			f, err := g.format()
			if err != nil {
				return err
			}
			if scale < 1 || scale > 1000 {
				return usageError{fmt.Errorf("--scale must be between 1 and 1000, got %d", scale)}
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			if eerr := demo.CheckEngine(engine); eerr != nil {
				return usageError{eerr}
			}
			if engine != "postgres" && runtime != "local" {
				return usageError{fmt.Errorf("--engine %s runs its drill on --runtime local only", engine)}
			}
			if rerr := demo.CheckRuntime(ctx, runtime); errors.Is(rerr, demo.ErrRuntime) {
				return usageError{rerr}
			} else if rerr != nil {
				fmt.Fprintf(g.stderr, "demo --runtime %s skipped: %v\n", runtime, rerr)
				return rerr
			}
			pr := g.progress(log)
			defer pr.Done()
			pr.Phase("sandbox")
			sb, err := demo.Start(ctx, demo.Options{Scale: scale, Status: pr.Status, Runtime: runtime, DockerImage: image, Engine: engine})
			if errors.Is(err, postgres.ErrNoBinaries) {
				return fmt.Errorf("the demo needs PostgreSQL server binaries: %w", err)
			}
			if errors.Is(err, demo.ErrNoServer) {
				fmt.Fprintf(g.stderr, "demo --engine %s skipped: %v\n", engine, err)
				return err
			}
			if err != nil {
				return fmt.Errorf("while building the demo sandbox: %w", err)
			}
			defer func() {
				if keep {
					// Production stays up for the other commands; restarting it must work
					// even after Ctrl-C.
					kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
					defer cancel()
					k, kerr := sb.Keep(kctx)
					printKept(g.stderr, sb.Dir, k, kerr)
					if kerr != nil {
						err = errors.Join(err, kerr)
					}
					return
				}
				if rerr := sb.Remove(); rerr != nil {
					err = errors.Join(err, fmt.Errorf("while removing the demo sandbox %s: %w", sb.Dir, rerr))
				}
			}()
			cfgPath := filepath.Join(sb.Dir, "firedrill.yaml")
			if err := os.WriteFile(cfgPath, []byte(sb.Config()), 0o600); err != nil {
				return fmt.Errorf("while writing the demo configuration: %w", err)
			}
			cfg, err := policy.Load(cfgPath)
			if err != nil {
				return err
			}
			t := &cfg.Targets[0]
			pr.Phase("load")
			if err := sb.StartLoad(ctx); err != nil {
				return err
			}
			pr.Status(sb.LoadDescription())
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			if _, err := takeSnapshot(ctx, t, pr, log); err != nil {
				return fmt.Errorf("while taking the demo snapshot: %w", err)
			}
			pr.Phase("stop load")
			sb.StopLoad()
			res, err := runDrill(ctx, cfg, t, "", false, pr, log)
			pr.Done()
			if err != nil && res == nil {
				return err
			}
			if perr := printDrills(g, f, []*reports.DrillResult{res}); perr != nil {
				return perr
			}
			if err != nil {
				return err
			}
			derr := resultsErr([]*reports.DrillResult{res})
			if f == render.FormatJSON {
				return derr // the JSON is the drill result, as with 'firedrill drill'
			}
			// The auditor's view of the same target: no restore, just the live estate.
			rep := runAudit(ctx, cfg, cfg.Targets, log)
			fmt.Fprintf(g.stdout, "\nAudit of the live estate (firedrill audit):\n")
			if perr := printAudit(g, f, rep); perr != nil {
				return perr
			}
			if derr != nil {
				return derr
			}
			return auditErr(rep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the sandbox (data, WAL archive, snapshot repository, history, firedrill.yaml) and leave its production server running")
	cmd.Flags().IntVar(&scale, "scale", 5, "pgbench scale of the demo dataset (about 15 MB per unit)")
	cmd.Flags().StringVar(&runtime, "runtime", "local", "where the drill's throwaway runs: local or docker (a container of a Docker engine; exit 3 when none is reachable)")
	cmd.Flags().StringVar(&engine, "engine", "postgres", "the production database's engine: "+strings.Join(demo.Engines(), ", ")+" (redis and mariadb need redis-server, mariadbd and mariadb-backup installed; exit 3 when they are not)")
	cmd.Flags().StringVar(&image, "image", "", "with --runtime docker: the PostgreSQL image (default postgres:<major> of the snapshot, pulled if missing)")
	return cmd
}
