package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/firedrill/firedrill/reports/render"
)

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	_ = stdin
	g := &globals{stdout: render.WithWidth(stdout, outputWidth(stdout, os.Getenv)), stderr: stderr}
	if f, ok := stderr.(*os.File); ok {
		g.tty = term.IsTerminal(int(f.Fd()))
	}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil && !errors.Is(err, errChecksFailed) && !errors.Is(err, errCouldNotCheck) {
		fmt.Fprintf(stderr, "firedrill: %s\n", indentLines(err.Error()))
		if code == exitUsage {
			var ue usageError
			if errors.As(err, &ue) {
				fmt.Fprintln(stderr, "Run 'firedrill --help' for usage.")
			}
		}
	}
	return code
}

// outputWidth is the width tables are fitted to (render.WithWidth): the terminal's when stdout
// is one, else $COLUMNS when it is set to a number (watch(1) sets it), else 0: unknown, and
// tables are written in full.
func outputWidth(stdout io.Writer, getenv func(string) string) int {
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(getenv("COLUMNS"))); err == nil && n > 0 {
		return n
	}
	return 0
}

func indentLines(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "firedrill",
		Short: "Prove that your database backups restore",
		Long: `firedrill proves recoverability: it takes application-consistent snapshots of your
databases, restores the newest one into a throwaway copy sandboxed away from production (and
proves from inside that it sees nothing of it; 'firedrill drill --help' says how), verifies it
(amcheck, checksums, row counts, your own SQL, data freshness), times the restore against the
RTO, and keeps the evidence.

Start with 'firedrill demo' (needs only local PostgreSQL server binaries), then write a
firedrill.yaml (see the README) and run 'firedrill snapshot' and 'firedrill drill';
'firedrill serve' does it continuously with metrics and alerts, and 'firedrill report' writes
the signed evidence up as the period report an auditor asks for.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without these, cobra reports an unknown command as a plain error (exit 3).
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", envOr("FIREDRILL_CONFIG", "firedrill.yaml"), "configuration file (env FIREDRILL_CONFIG)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (default: warn; logs go to stderr, as JSON when stderr is not a terminal)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetHelpCommand(&cobra.Command{Hidden: true})
	root.AddCommand(newKeygenCmd(g))
	root.AddCommand(newVersionCmd(g), newSnapshotCmd(g), newSnapshotsCmd(g), newDrillCmd(g), newDemoCmd(g), newAuditCmd(g), newGCCmd(g), newServeCmd(g), newReportCmd(g), newHistoryCmd(g))
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs turns positional-argument errors into usage errors.
func wrapArgs(a cobra.PositionalArgs) cobra.PositionalArgs {
	if a == nil {
		a = cobra.NoArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := a(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
