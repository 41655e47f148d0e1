package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/evidence"
	"github.com/firedrill/firedrill/reports/render"
)

type reportVerifyOptions struct {
	history string
	keys    []string
	target  string
}

// newReportVerifyCmd is 'firedrill report verify', added under 'firedrill report'.
func newReportVerifyCmd(g *globals) *cobra.Command {
	var o reportVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the evidence records' signatures and hash chain",
		Long: `verify checks every evidence record under --history: each decodes as a DSSE envelope
over an in-toto Statement whose subject digest matches the record, records of a target are
numbered 1, 2, 3... with no gap, each carries the SHA-256 of the one before it, and, with --key,
each is signed by one of the given public keys. It names the first broken record of each target:
an edited, deleted, reordered or re-signed record is found.

Without --key only the chain is checked: then a change to the newest record that also fixes its
subject digest cannot be told from the original; give the public key to rule that out.

` + exitCodesHelp,
		Example: `  firedrill report verify --history /var/lib/firedrill/evidence --key firedrill-evidence.pub`,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runReportVerify(cmd, g, o) },
	}
	cmd.Flags().StringVar(&o.history, "history", "", "evidence directory (<dir>/<target>/<seq>-<kind>-<id>.json)")
	cmd.Flags().StringArrayVar(&o.keys, "key", nil, "trusted public key (PEM); repeat for several")
	cmd.Flags().StringVar(&o.target, "target", "", "verify only this target")
	return cmd
}

func runReportVerify(cmd *cobra.Command, g *globals, o reportVerifyOptions) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	if o.history == "" {
		return usageError{errors.New("--history is required: the evidence directory to verify")}
	}
	if fi, err := os.Stat(o.history); err != nil || !fi.IsDir() {
		return usageError{fmt.Errorf("--history %s is not a directory", o.history)}
	}
	var v *evidence.Verifier
	if len(o.keys) > 0 {
		if v, err = evidence.LoadVerifier(o.keys...); err != nil {
			return usageError{err}
		}
	}
	store := evidence.NewDirStore(o.history, nil)
	var rep *evidence.VerifyReport
	if o.target != "" {
		tv, err := evidence.VerifyTarget(cmd.Context(), store, o.target, v)
		if err != nil {
			return err
		}
		if tv.Records == 0 {
			return usageError{fmt.Errorf("no evidence records of target %q in %s", o.target, o.history)}
		}
		rep = &evidence.VerifyReport{Targets: []evidence.TargetVerify{tv}}
	} else if rep, err = evidence.Verify(cmd.Context(), store, v); err != nil {
		return err
	}
	if f == render.FormatJSON {
		if err := render.JSON(g.stdout, rep); err != nil {
			return err
		}
	} else {
		renderVerify(g, o.history, rep, v != nil)
	}
	if !rep.OK() {
		return errChecksFailed
	}
	return nil
}

func renderVerify(g *globals, dir string, rep *evidence.VerifyReport, keyed bool) {
	if len(rep.Targets) == 0 {
		fmt.Fprintf(g.stdout, "no evidence records in %s\n", dir)
		return
	}
	what := "chain only, signatures not checked (no --key)"
	if keyed {
		what = "signatures and chain"
	}
	for _, t := range rep.Targets {
		if t.OK {
			fmt.Fprintf(g.stdout, "%s: %d records verified (%s)\n", t.Target, t.Records, what)
			continue
		}
		fmt.Fprintf(g.stdout, "%s: BROKEN at record %d of %d: %s\n  %s\n", t.Target, t.First.Seq, t.Records, t.First.Path, t.First.Problem)
	}
}
