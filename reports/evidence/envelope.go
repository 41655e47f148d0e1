package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// The DSSE and in-toto constants an auditor's tooling checks.
const (
	PayloadType   = "application/vnd.in-toto+json"
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://firedrill.dev/evidence/v1"
)

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse).
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // base64 (standard) of the Statement
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; KeyID is the hex SHA-256 of the PKIX public key.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64 (standard)
}

// Statement is an in-toto Statement v1 whose predicate is a Record.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject names the record and carries the SHA-256 of its JSON (the predicate's bytes).
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// SubjectName is how a record is named in its Statement.
func SubjectName(r *Record) string { return "firedrill/" + r.Target + "/" + r.Kind + "/" + r.ID }

// PAE is DSSE's pre-authentication encoding: what is signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// seal encodes r as the bytes stored: an envelope over its Statement, signed when s is not nil.
func seal(r *Record, s *Signer) ([]byte, error) {
	rec, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("while encoding record %s: %w", r.ID, err)
	}
	st, err := json.Marshal(Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: SubjectName(r), Digest: map[string]string{"sha256": sha256Hex(rec)}}},
		PredicateType: PredicateType,
		Predicate:     rec,
	})
	if err != nil {
		return nil, fmt.Errorf("while encoding the statement of record %s: %w", r.ID, err)
	}
	env := Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signatures: []Signature{}}
	if s != nil {
		env.Signatures = append(env.Signatures, s.sign(PAE(PayloadType, st)))
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("while encoding the envelope of record %s: %w", r.ID, err)
	}
	return append(b, '\n'), nil
}

// opened is a stored record taken apart, with what is wrong with its structure (not its chain
// or its signature) in problem.
type opened struct {
	env       Envelope
	payload   []byte
	statement Statement
	record    Record
	problem   string
}

// open decodes stored bytes. A problem is reported in the result, not as an error: a record
// that does not decode is a finding of Verify.
func open(b []byte) opened {
	var o opened
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o.env); err != nil {
		o.problem = "not a DSSE envelope: " + err.Error()
		return o
	}
	if o.env.PayloadType != PayloadType {
		o.problem = fmt.Sprintf("payloadType %q, want %q", o.env.PayloadType, PayloadType)
		return o
	}
	p, err := base64.StdEncoding.DecodeString(o.env.Payload)
	if err != nil {
		o.problem = "payload is not base64: " + err.Error()
		return o
	}
	o.payload = p
	if err := json.Unmarshal(p, &o.statement); err != nil {
		o.problem = "payload is not an in-toto Statement: " + err.Error()
		return o
	}
	st := o.statement
	if st.Type != StatementType || st.PredicateType != PredicateType {
		o.problem = fmt.Sprintf("statement type %q / predicate type %q, want %q / %q", st.Type, st.PredicateType, StatementType, PredicateType)
		return o
	}
	if err := json.Unmarshal(st.Predicate, &o.record); err != nil {
		o.problem = "predicate is not a firedrill record: " + err.Error()
		return o
	}
	if len(st.Subject) != 1 || st.Subject[0].Name != SubjectName(&o.record) {
		o.problem = "statement subject does not name the record " + SubjectName(&o.record)
		return o
	}
	if got := sha256Hex(st.Predicate); st.Subject[0].Digest["sha256"] != got {
		o.problem = fmt.Sprintf("record digest %s does not match the subject's %s", got, st.Subject[0].Digest["sha256"])
	}
	return o
}
