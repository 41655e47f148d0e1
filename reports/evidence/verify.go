package evidence

import (
	"context"
	"fmt"
)

// Finding is the first broken record of a target: where it is and what is wrong.
type Finding struct {
	Target  string `json:"target"`
	Path    string `json:"path"`
	Seq     int64  `json:"seq"`
	Problem string `json:"problem"`
}

// TargetVerify is the outcome for one target's chain.
type TargetVerify struct {
	Target  string `json:"target"`
	Records int    `json:"records"`
	OK      bool   `json:"ok"`
	// Signatures is true when signatures were checked (a Verifier was given).
	Signatures bool     `json:"signatures"`
	First      *Finding `json:"first,omitempty"`
}

// VerifyReport is the outcome of Verify for every target of a store.
type VerifyReport struct {
	Targets []TargetVerify `json:"targets"`
}

// OK is true when every target's chain verified.
func (r *VerifyReport) OK() bool {
	for _, t := range r.Targets {
		if !t.OK {
			return false
		}
	}
	return true
}

// Verify checks every target's chain: each record decodes, its subject digest matches, it
// belongs to its target, its sequence number follows the previous one, its Prev is the previous
// record's digest and, when v is not nil, a trusted key signed it. It names the first broken
// record of each target. Its error is for a store that could not be read, never for tampering.
func Verify(ctx context.Context, s Store, v *Verifier) (*VerifyReport, error) {
	rl, ok := s.(RawLister)
	if !ok {
		return nil, fmt.Errorf("store %T cannot list raw records for verification", s)
	}
	targets, err := s.Targets(ctx)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Targets: []TargetVerify{}}
	for _, t := range targets {
		raws, err := rl.ListRaw(ctx, t)
		if err != nil {
			return nil, err
		}
		tv := TargetVerify{Target: t, Records: len(raws), OK: true, Signatures: v != nil}
		if f := verifyChain(t, raws, v); f != nil {
			tv.OK, tv.First = false, f
		}
		rep.Targets = append(rep.Targets, tv)
	}
	return rep, nil
}

// VerifyTarget checks one target's chain (see Verify).
func VerifyTarget(ctx context.Context, s RawLister, target string, v *Verifier) (TargetVerify, error) {
	raws, err := s.ListRaw(ctx, target)
	if err != nil {
		return TargetVerify{}, err
	}
	tv := TargetVerify{Target: target, Records: len(raws), OK: true, Signatures: v != nil}
	if f := verifyChain(target, raws, v); f != nil {
		tv.OK, tv.First = false, f
	}
	return tv, nil
}

func verifyChain(target string, raws []Raw, v *Verifier) *Finding {
	prev := ""
	for i, r := range raws {
		want := int64(i + 1)
		bad := func(format string, a ...any) *Finding {
			return &Finding{Target: target, Path: r.Path, Seq: r.Seq, Problem: fmt.Sprintf(format, a...)}
		}
		if r.Seq != want {
			return bad("sequence gap: expected record %d, found %d (a record was removed or renamed)", want, r.Seq)
		}
		o := open(r.Bytes)
		// The signature first: a changed byte is reported as what an auditor's tooling would say.
		if v != nil && o.env.PayloadType != "" && o.payload != nil {
			if p := v.check(o.env, o.payload); p != "" {
				return bad("%s", p)
			}
		}
		if o.problem != "" {
			return bad("%s", o.problem)
		}
		rec := o.record
		if rec.Target != target {
			return bad("record belongs to target %q, not %q", rec.Target, target)
		}
		if rec.Seq != r.Seq {
			return bad("record says it is number %d but is stored as number %d (records moved or swapped)", rec.Seq, r.Seq)
		}
		if rec.Prev != prev {
			if i == 0 {
				return bad("first record points to a previous record %s (earlier records removed)", rec.Prev)
			}
			return bad("previous-record digest %s does not match record %d's digest %s (a record was changed, removed or reordered)", short(rec.Prev), want-1, short(prev))
		}
		prev = sha256Hex(r.Bytes)
	}
	return nil
}

func short(d string) string {
	if len(d) > 16 {
		return d[:16] + "…"
	}
	if d == "" {
		return `""`
	}
	return d
}
