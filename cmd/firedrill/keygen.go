package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/evidence"
	"github.com/firedrill/firedrill/reports/render"
)

type keygenOptions struct {
	dir string
}

type keygenResult struct {
	PrivateKey string `json:"privateKey"`
	PublicKey  string `json:"publicKey"`
	KeyID      string `json:"keyId"`
}

func newKeygenCmd(g *globals) *cobra.Command {
	var o keygenOptions
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate the Ed25519 key pair that signs evidence records",
		Long: `keygen writes a new Ed25519 key pair for signing evidence records into --dir:
` + evidence.PrivateKeyFile + ` (PKCS#8 PEM, mode 0600: keep it secret, give it only to the
processes that write evidence) and ` + evidence.PublicKeyFile + ` (PKIX PEM: give it to whoever
verifies, e.g. 'firedrill report verify --key'). It never overwrites an existing key.

` + exitCodesHelp,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKeygen(g, o) },
	}
	cmd.Flags().StringVar(&o.dir, "dir", ".", "directory to write the key pair into")
	return cmd
}

func runKeygen(g *globals, o keygenOptions) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	priv, pub, err := evidence.GenerateKey(o.dir)
	if errors.Is(err, evidence.ErrKey) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	s, err := evidence.LoadSigner(priv)
	if err != nil {
		return err
	}
	res := keygenResult{PrivateKey: priv, PublicKey: pub, KeyID: s.KeyID()}
	if f == render.FormatJSON {
		return render.JSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "private key: %s (keep it secret)\npublic key:  %s\nkey id:      %s\n", res.PrivateKey, res.PublicKey, res.KeyID)
	return nil
}
