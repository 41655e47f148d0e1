package integration

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/evidence"
)

// evidenceChain generates a key with 'firedrill keygen', appends four signed drill records of
// target orders through the library and returns the evidence directory, the record paths and the
// key files.
func evidenceChain(t *testing.T) (dir string, paths []string, priv, pub string) {
	t.Helper()
	base := harness.TempDir(t)
	keys := filepath.Join(base, "keys")
	r := runCLI(t, t.Context(), "keygen", "--dir", keys, "--output", "json")
	if r.code != 0 {
		t.Fatalf("keygen exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var k struct{ PrivateKey, PublicKey, KeyID string }
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.KeyID == "" {
		t.Fatalf("keygen output %q: %v", r.stdout, err)
	}
	signer, err := evidence.LoadSigner(k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(base, "evidence")
	store := evidence.NewDirStore(dir, signer)
	at := time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)
	for i := range 4 {
		d := &reports.DrillResult{SchemaVersion: 1, ID: fmt.Sprintf("drill-%d", i+1), Target: "orders", StartedAt: at.AddDate(0, i, 0),
			FinishedAt: at.AddDate(0, i, 0).Add(90 * time.Second), Status: reports.StatusPass, RTO: reports.RTO{TargetSeconds: 600, ActualSeconds: 90, Met: true}}
		rec := evidence.DrillRecord(d)
		rec.ToolVersion, rec.Where = "integration", map[string]string{"host": "test"}
		s, err := store.Append(t.Context(), &rec)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, s.Path)
	}
	return dir, paths, k.PrivateKey, k.PublicKey
}

// resignWithAnotherKey rewrites the record at p with its status changed, signed by a key that is
// not the trusted one: what someone without the key would have to do to edit a record.
func resignWithAnotherKey(t *testing.T, p string) {
	t.Helper()
	_, other, _ := ed25519.GenerateKey(nil)
	b, _ := os.ReadFile(p)
	var env evidence.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	payload = []byte(strings.Replace(string(payload), `"status":"pass"`, `"status":"fail"`, 1))
	env.Payload = base64.StdEncoding.EncodeToString(payload)
	id, _ := evidence.KeyID(other.Public().(ed25519.PublicKey))
	env.Signatures = []evidence.Signature{{KeyID: id, Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(other, evidence.PAE(env.PayloadType, payload)))}}
	out, _ := json.Marshal(env)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Tampering with evidence is found by 'firedrill report verify', which exits 1 naming the record.
func TestEvidenceVerifyCLI(t *testing.T) {
	harness.Integration(t)
	cases := []struct {
		name   string
		tamper func(t *testing.T, paths []string)
		named  int // index of the record named
		says   string
	}{
		{"changed byte", func(t *testing.T, paths []string) {
			b, _ := os.ReadFile(paths[1])
			i := strings.Index(string(b), `"payload": "`) + len(`"payload": "`) + 40
			b[i] ^= 0x01 // one base64 character becomes another
			os.WriteFile(paths[1], b, 0o600)
		}, 1, ""},
		{"dropped record", func(t *testing.T, paths []string) { os.Remove(paths[2]) }, 3, "sequence gap"},
		{"two records swapped", func(t *testing.T, paths []string) {
			a, _ := os.ReadFile(paths[1])
			b, _ := os.ReadFile(paths[2])
			os.WriteFile(paths[1], b, 0o600)
			os.WriteFile(paths[2], a, 0o600)
		}, 1, "number 3"},
		{"re-signed with another key", func(t *testing.T, paths []string) { resignWithAnotherKey(t, paths[1]) }, 1, "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, paths, _, pub := evidenceChain(t)
			ok := runCLI(t, t.Context(), "report", "verify", "--history", dir, "--key", pub)
			if ok.code != 0 || !strings.Contains(ok.stdout, "orders: 4 records verified (signatures and chain)") {
				t.Fatalf("verify of an intact chain exited %d:\n%s\n%s", ok.code, ok.stdout, ok.stderr)
			}
			tc.tamper(t, paths)
			r := runCLI(t, t.Context(), "report", "verify", "--history", dir, "--key", pub)
			if r.code != 1 {
				t.Fatalf("verify after tampering exited %d, want 1:\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, paths[tc.named]) || !strings.Contains(r.stdout, "BROKEN at record") || !strings.Contains(r.stdout, tc.says) {
				t.Errorf("verify output does not name %s (%q):\n%s", paths[tc.named], tc.says, r.stdout)
			}
			j := runCLI(t, t.Context(), "report", "verify", "--history", dir, "--key", pub, "--output", "json")
			var rep evidence.VerifyReport
			if err := json.Unmarshal([]byte(j.stdout), &rep); err != nil || j.code != 1 || rep.OK() || rep.Targets[0].First.Path != paths[tc.named] {
				t.Errorf("JSON verify exited %d: %s (%v)", j.code, j.stdout, err)
			}
		})
	}
}

func TestEvidenceVerifyCLIUsage(t *testing.T) {
	harness.Integration(t)
	dir, _, priv, _ := evidenceChain(t)
	for _, args := range [][]string{
		{"report", "verify"},
		{"report", "verify", "--history", filepath.Join(dir, "missing")},
		{"report", "verify", "--history", dir, "--key", priv},
		{"keygen", "--dir", filepath.Dir(priv)},
	} {
		if r := runCLI(t, t.Context(), args...); r.code != 2 {
			t.Errorf("firedrill %v exited %d, want 2:\n%s", args, r.code, r.stderr)
		}
	}
	if r := runCLI(t, t.Context(), "report", "verify", "--history", dir); r.code != 0 || !strings.Contains(r.stdout, "signatures not checked") {
		t.Errorf("chain-only verify exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
