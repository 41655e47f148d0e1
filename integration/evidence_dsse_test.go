package integration

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/firedrill/firedrill/integration/harness"
)

// ed25519Verifier is all go-securesystemslib's DSSE verifier needs of a key. The key id is the
// one firedrill documents: the hex SHA-256 of the PKIX public key, computed here, not by firedrill.
type ed25519Verifier struct {
	pub ed25519.PublicKey
	id  string
}

func (v ed25519Verifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errors.New("ed25519: bad signature")
	}
	return nil
}
func (v ed25519Verifier) KeyID() (string, error)   { return v.id, nil }
func (v ed25519Verifier) Public() crypto.PublicKey { return v.pub }

func loadPub(t *testing.T, p string) ed25519Verifier {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blk.Bytes)
	return ed25519Verifier{pub: k.(ed25519.PublicKey), id: hex.EncodeToString(sum[:])}
}

// An evidence record verifies with an independent DSSE implementation and parses as an in-toto
// Statement v1 with the reference library, the way an auditor would check it without firedrill.
func TestEvidenceVerifiesWithIndependentDSSEAndInToto(t *testing.T) {
	harness.Integration(t)
	_, paths, _, pub := evidenceChain(t)
	b, err := os.ReadFile(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" {
		t.Errorf("payloadType %q", env.PayloadType)
	}
	ev, err := dsse.NewEnvelopeVerifier(loadPub(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	accepted, payload, err := ev.VerifyAndDecode(t.Context(), &env)
	if err != nil || len(accepted) != 1 {
		t.Fatalf("go-securesystemslib dsse does not verify the envelope: %v (accepted %d)", err, len(accepted))
	}

	var st intoto.Statement
	if err := protojson.Unmarshal(payload, &st); err != nil {
		t.Fatalf("the payload is not an in-toto Statement: %v", err)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("in-toto Statement invalid: %v", err)
	}
	if st.GetType() != intoto.StatementTypeUri || st.GetPredicateType() != "https://firedrill.dev/evidence/v1" {
		t.Errorf("statement type %q, predicate type %q", st.GetType(), st.GetPredicateType())
	}
	subj := st.GetSubject()
	if len(subj) != 1 || subj[0].GetName() != "firedrill/orders/drill/drill-2" {
		t.Fatalf("subject %v", subj)
	}
	// The subject digest is the SHA-256 of the predicate (the record) as it appears in the payload.
	var raw struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw.Predicate)
	if got := subj[0].GetDigest()["sha256"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("subject digest %s, predicate's %x", got, sum)
	}
	pred := st.GetPredicate().AsMap()
	if pred["kind"] != "drill" || pred["target"] != "orders" || pred["seq"] != float64(2) || pred["status"] != "pass" {
		t.Errorf("predicate %v", pred)
	}

	// And a record whose payload was edited does not verify with it either.
	c := byte('A')
	if env.Payload[20] == c {
		c = 'B'
	}
	env.Payload = env.Payload[:20] + string(c) + env.Payload[21:]
	if _, err := ev.Verify(t.Context(), &env); err == nil {
		t.Error("go-securesystemslib dsse verified an edited envelope")
	}
}
