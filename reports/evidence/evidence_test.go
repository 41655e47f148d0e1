package evidence

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
)

func newSigner(t *testing.T) (*Signer, *Verifier) {
	t.Helper()
	priv, pub, err := GenerateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func record(target, kind, id string, at time.Time) *Record {
	r := &Record{Kind: kind, ID: id, Target: target, StartedAt: at, FinishedAt: at.Add(time.Minute), Status: StatusPass,
		ToolVersion: "test", ConfigDigest: strings.Repeat("0", 64), Objectives: Objectives{RPOSeconds: 3600, RTOSeconds: 600, DrillEverySeconds: 86400}}
	switch kind {
	case KindDrill:
		r.Drill = &reports.DrillResult{SchemaVersion: 1, ID: id, Target: target, StartedAt: at, FinishedAt: at.Add(time.Minute), Status: reports.StatusPass}
	case KindAudit:
		r.Audit = []checks.Finding{checks.Warnf("backup-age", checks.Evidence{"ageSeconds": 10}, "old-ish")}
		r.Status = AuditStatus(r.Audit)
	}
	return r
}

// chain appends n records to target in a new store and returns it with their paths.
func chain(t *testing.T, s *Signer, target string, n int) (*DirStore, []string) {
	t.Helper()
	st := NewDirStore(t.TempDir(), s)
	var paths []string
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		kind := []string{KindDrill, KindAudit, KindSnapshot}[i%3]
		got, err := st.Append(t.Context(), record(target, kind, fmt.Sprintf("r%d", i+1), at.Add(time.Duration(i)*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, got.Path)
	}
	return st, paths
}

func TestAppendChainsAndLists(t *testing.T) {
	s, v := newSigner(t)
	st, paths := chain(t, s, "orders", 4)
	if base := filepath.Base(paths[1]); base != "000000002-audit-r2.json" {
		t.Errorf("second record stored as %s", base)
	}
	got, err := st.List(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("listed %d records, want 4", len(got))
	}
	for i, r := range got {
		if r.Record.Seq != int64(i+1) || !r.Signed || r.KeyID != s.KeyID() || r.Record.SchemaVersion != SchemaVersion {
			t.Errorf("record %d: seq %d signed %v key %s schema %d", i, r.Record.Seq, r.Signed, r.KeyID, r.Record.SchemaVersion)
		}
		want := ""
		if i > 0 {
			want = got[i-1].Digest
		}
		if r.Record.Prev != want {
			t.Errorf("record %d: prev %q, want %q", i+1, r.Record.Prev, want)
		}
	}
	if got[1].Record.Status != StatusPass || got[1].Record.Audit[0].Status != checks.Warn {
		t.Errorf("audit record did not round-trip: %+v", got[1].Record)
	}
	rep, err := Verify(t.Context(), st, v)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Targets) != 1 || rep.Targets[0].Records != 4 {
		t.Errorf("verify of an intact chain: %+v", rep)
	}
}

func TestAppendRejectsBadRecords(t *testing.T) {
	st := NewDirStore(t.TempDir(), nil)
	for name, r := range map[string]*Record{
		"target with slash": {Kind: KindDrill, ID: "x", Target: "a/b", Status: StatusPass},
		"dot target":        {Kind: KindDrill, ID: "x", Target: "..", Status: StatusPass},
		"unknown kind":      {Kind: "backup", ID: "x", Target: "a", Status: StatusPass},
		"no id":             {Kind: KindDrill, Target: "a", Status: StatusPass},
		"warn status":       {Kind: KindAudit, ID: "x", Target: "a", Status: "warn"},
	} {
		if _, err := st.Append(t.Context(), r); err == nil {
			t.Errorf("%s: appended", name)
		}
	}
}

// rewrite changes the record stored at p through its decoded envelope.
func rewrite(t *testing.T, p string, change func(env *Envelope, st *Statement)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	change(&env, &st)
	out, _ := json.MarshalIndent(env, "", "  ")
	if err := os.WriteFile(p, append(out, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

func setPayload(env *Envelope, st *Statement) {
	b, _ := json.Marshal(st)
	env.Payload = base64.StdEncoding.EncodeToString(b)
}

// flipStatus edits record 2's outcome, optionally fixing up its subject digest.
func flipStatus(fixDigest bool) func(t *testing.T, paths []string, _ *Signer) {
	return func(t *testing.T, paths []string, _ *Signer) {
		rewrite(t, paths[1], func(env *Envelope, st *Statement) {
			st.Predicate = bytes.Replace(st.Predicate, []byte(`"status":"pass"`), []byte(`"status":"fail"`), 1)
			if fixDigest {
				st.Subject[0].Digest["sha256"] = sha256Hex(st.Predicate)
			}
			setPayload(env, st)
		})
	}
}

func TestVerifyNamesFirstBrokenRecord(t *testing.T) {
	other, _ := newSigner(t)
	cases := []struct {
		name   string
		tamper func(t *testing.T, paths []string, other *Signer)
		// keyed: the broken record and the problem with the key; chain: without it.
		keyedSeq  int64
		keyedProb string
		chainSeq  int64
		chainProb string
	}{
		{name: "changed byte in a record", tamper: flipStatus(false), keyedSeq: 2, keyedProb: "bad signature", chainSeq: 2, chainProb: "does not match the subject"},
		{name: "changed record with its digest fixed up", tamper: flipStatus(true), keyedSeq: 2, keyedProb: "bad signature", chainSeq: 3, chainProb: "previous-record digest"},
		{name: "changed byte in the signature", tamper: func(t *testing.T, paths []string, _ *Signer) {
			rewrite(t, paths[1], func(env *Envelope, _ *Statement) {
				sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
				sig[0] ^= 1
				env.Signatures[0].Sig = base64.StdEncoding.EncodeToString(sig)
			})
		}, keyedSeq: 2, keyedProb: "bad signature", chainSeq: 3, chainProb: "previous-record digest"},
		{name: "dropped record", tamper: func(t *testing.T, paths []string, _ *Signer) {
			if err := os.Remove(paths[1]); err != nil {
				t.Fatal(err)
			}
		}, keyedSeq: 3, keyedProb: "sequence gap", chainSeq: 3, chainProb: "sequence gap"},
		{name: "dropped first record", tamper: func(t *testing.T, paths []string, _ *Signer) {
			if err := os.Remove(paths[0]); err != nil {
				t.Fatal(err)
			}
		}, keyedSeq: 2, keyedProb: "sequence gap", chainSeq: 2, chainProb: "sequence gap"},
		{name: "dropped record, later ones renumbered", tamper: func(t *testing.T, paths []string, _ *Signer) {
			os.Remove(paths[1])
			os.Rename(paths[2], strings.Replace(paths[2], "000000003-", "000000002-", 1))
			os.Rename(paths[3], strings.Replace(paths[3], "000000004-", "000000003-", 1))
		}, keyedSeq: 2, keyedProb: "says it is number 3", chainSeq: 2, chainProb: "says it is number 3"},
		{name: "two records swapped", tamper: func(t *testing.T, paths []string, _ *Signer) {
			a, _ := os.ReadFile(paths[1])
			b, _ := os.ReadFile(paths[2])
			os.WriteFile(paths[1], b, 0o600)
			os.WriteFile(paths[2], a, 0o600)
		}, keyedSeq: 2, keyedProb: "says it is number 3", chainSeq: 2, chainProb: "says it is number 3"},
		{name: "re-signed with another key", tamper: func(t *testing.T, paths []string, other *Signer) {
			rewrite(t, paths[1], func(env *Envelope, st *Statement) {
				st.Predicate = bytes.Replace(st.Predicate, []byte(`"status":"pass"`), []byte(`"status":"fail"`), 1)
				st.Subject[0].Digest["sha256"] = sha256Hex(st.Predicate)
				setPayload(env, st)
				payload, _ := base64.StdEncoding.DecodeString(env.Payload)
				env.Signatures = []Signature{other.sign(PAE(env.PayloadType, payload))}
			})
		}, keyedSeq: 2, keyedProb: "unknown key", chainSeq: 3, chainProb: "previous-record digest"},
		{name: "re-signed with another key claiming the trusted key id", tamper: func(t *testing.T, paths []string, other *Signer) {
			rewrite(t, paths[1], func(env *Envelope, _ *Statement) {
				payload, _ := base64.StdEncoding.DecodeString(env.Payload)
				id := env.Signatures[0].KeyID
				env.Signatures = []Signature{other.sign(PAE(env.PayloadType, payload))}
				env.Signatures[0].KeyID = id
			})
		}, keyedSeq: 2, keyedProb: "bad signature", chainSeq: 3, chainProb: "previous-record digest"},
		{name: "signature removed", tamper: func(t *testing.T, paths []string, _ *Signer) {
			rewrite(t, paths[3], func(env *Envelope, _ *Statement) { env.Signatures = []Signature{} })
		}, keyedSeq: 4, keyedProb: "unsigned", chainSeq: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, v := newSigner(t)
			st, paths := chain(t, s, "orders", 4)
			tc.tamper(t, paths, other)
			for _, mode := range []struct {
				name string
				v    *Verifier
				seq  int64
				prob string
			}{{"with key", v, tc.keyedSeq, tc.keyedProb}, {"chain only", nil, tc.chainSeq, tc.chainProb}} {
				rep, err := Verify(t.Context(), st, mode.v)
				if err != nil {
					t.Fatal(err)
				}
				tv := rep.Targets[0]
				if mode.seq == 0 {
					if !tv.OK {
						t.Errorf("%s: flagged %+v, want OK (undetectable without the key)", mode.name, tv.First)
					}
					continue
				}
				if tv.OK || tv.First == nil {
					t.Fatalf("%s: tampering not detected", mode.name)
				}
				f := tv.First
				if f.Seq != mode.seq || !strings.Contains(f.Problem, mode.prob) || f.Target != "orders" {
					t.Errorf("%s: first broken record %d %q, want %d containing %q", mode.name, f.Seq, f.Problem, mode.seq, mode.prob)
				}
				if !strings.HasPrefix(filepath.Base(f.Path), seqName(f.Seq)+"-") {
					t.Errorf("%s: named %s for record %d", mode.name, f.Path, f.Seq)
				}
			}
		})
	}
}

func TestLeftoverTempFileIsIgnored(t *testing.T) {
	s, v := newSigner(t)
	st, paths := chain(t, s, "orders", 2)
	// What a crash between create and link leaves behind: a partial temporary file.
	if err := os.WriteFile(filepath.Join(filepath.Dir(paths[0]), ".tmp-123"), []byte(`{"payloadTy`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(t.Context(), record("orders", KindDrill, "r3", time.Now())); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(t.Context(), st, v)
	if err != nil || !rep.OK() || rep.Targets[0].Records != 3 {
		t.Fatalf("verify after a leftover temp file: %+v %v", rep, err)
	}
}

func TestConcurrentAppendsNeverFork(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := range 8 {
		st := NewDirStore(dir, nil) // a store each, as two processes would have
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				if _, err := st.Append(t.Context(), record("orders", KindDrill, fmt.Sprintf("w%d-%d", w, i), time.Now())); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	assertChain(t, dir, 40)
}

func assertChain(t *testing.T, dir string, n int) {
	t.Helper()
	rep, err := Verify(t.Context(), NewDirStore(dir, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Targets[0].Records != n {
		t.Fatalf("after concurrent appends: %+v (first %+v), want %d records chained", rep.Targets[0], rep.Targets[0].First, n)
	}
}

const helperEnv = "FIREDRILL_EVIDENCE_APPEND_HELPER"

// TestAppendHelperProcess is run by TestTwoProcessesNeverFork as a child process.
func TestAppendHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestTwoProcessesNeverFork")
	}
	st := NewDirStore(dir, nil)
	for i := range 25 {
		if _, err := st.Append(t.Context(), record("orders", KindDrill, fmt.Sprintf("p%d-%d", os.Getpid(), i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTwoProcessesNeverFork(t *testing.T) {
	dir := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestAppendHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	assertChain(t, dir, 50)
}

func TestImportDrillHistoryIsIdempotent(t *testing.T) {
	hdir := t.TempDir()
	h := history.New(hdir)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		d := &reports.DrillResult{SchemaVersion: 1, ID: "d" + strconv.Itoa(i), Target: "orders", StartedAt: at.AddDate(0, i, 0), FinishedAt: at.AddDate(0, i, 0).Add(time.Minute),
			Status: []reports.Status{reports.StatusPass, reports.StatusFail, reports.StatusPass}[i], RTO: reports.RTO{TargetSeconds: 600, ActualSeconds: 60, Met: true}}
		if _, err := h.Save(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	st := NewDirStore(t.TempDir(), nil)
	for round, want := range []int{3, 0} {
		n, err := ImportDrillHistory(t.Context(), st, hdir, "orders")
		if err != nil || n != want {
			t.Fatalf("import round %d: %d records, %v; want %d", round, n, err, want)
		}
	}
	got, err := st.List(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Record.ID != "d0" || got[1].Record.Status != StatusFail || got[2].Record.Objectives.RTOSeconds != 600 {
		t.Fatalf("imported chain: %+v", got)
	}
	if got[0].Record.Where["importedFrom"] == "" {
		t.Error("imported record does not say where from")
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode: %v %v", fi.Mode(), err)
	}
	if _, _, err := GenerateKey(dir); err == nil {
		t.Error("GenerateKey overwrote an existing key")
	}
	if _, err := LoadSigner(pub); err == nil {
		t.Error("LoadSigner accepted a public key")
	}
	if _, err := LoadVerifier(priv); err == nil {
		t.Error("LoadVerifier accepted a private key")
	}
	s, _ := LoadSigner(priv)
	v, _ := LoadVerifier(pub)
	if ids := v.KeyIDs(); len(ids) != 1 || ids[0] != s.KeyID() {
		t.Errorf("key ids %v vs %s", ids, s.KeyID())
	}
}
