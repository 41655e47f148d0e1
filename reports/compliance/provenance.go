package compliance

import (
	"github.com/firedrill/firedrill/reports/evidence"
)

// Provenance verdicts (RecordRef.Signature and Chain).
const (
	Verified   = "verified"
	Unsigned   = "unsigned"
	Unchecked  = "unchecked"
	Failed     = "failed"
	Broken     = "broken"
	AfterBreak = "after-break"
)

// verdictsOf indexes a verification by target (nil: nothing was verified).
func verdictsOf(v *VerifyReport) map[string]*TargetVerify {
	if v == nil {
		return nil
	}
	out := map[string]*TargetVerify{}
	for i := range v.Targets {
		out[v.Targets[i].Target] = &v.Targets[i]
	}
	return out
}

// refOf says what verification found of one record. Verify checks a chain from its start and
// names the first broken record: the records before it verified, and nothing after it can be
// trusted to be what was written, since the chain no longer vouches for it.
func refOf(s Stored, tv *TargetVerify) RecordRef {
	rec := s.Record
	ref := RecordRef{Target: rec.Target, Kind: rec.Kind, ID: rec.ID, Seq: rec.Seq, At: rec.StartedAt.UTC(),
		Status: rec.Status, Path: s.Path, Digest: s.Digest, KeyID: s.KeyID, Signature: Unchecked, Chain: Unchecked}
	if tv == nil {
		if !s.Signed {
			ref.Signature = Unsigned
		}
		return ref
	}
	switch {
	case tv.OK || tv.First == nil || rec.Seq < tv.First.Seq:
		ref.Chain, ref.Signature = Verified, Verified
	case rec.Seq == tv.First.Seq:
		ref.Chain, ref.Signature, ref.Problem = Broken, Failed, tv.First.Problem
	default:
		ref.Chain, ref.Signature = AfterBreak, Unchecked
	}
	switch {
	case !s.Signed:
		ref.Signature = Unsigned
	case !tv.Signatures && ref.Signature == Verified:
		ref.Signature = Unchecked // the chain was verified without a public key
	}
	return ref
}

// controls maps the period's evidence to the controls it bears on. The wording is what the
// evidence shows; whether a control is met is the assessor's call.
func controls(all []Stored) []Control {
	var drills, audits, snaps int
	for _, s := range all {
		switch s.Record.Kind {
		case evidence.KindDrill:
			drills++
		case evidence.KindAudit:
			audits++
		case evidence.KindSnapshot:
			snaps++
		}
	}
	return []Control{
		{Framework: "ISO/IEC 27001:2022", Control: "A.8.13 Information backup",
			Requirement: "Backup copies are maintained and regularly tested in line with the agreed backup policy.",
			Evidence:    "Snapshot records (copies taken), audit records (backup age against the RPO, 3-2-1 copies, WAL archiving) and drill records (each backup restored and verified).",
			Records:     drills + audits + snaps},
		{Framework: "SOC 2 (2017 TSC)", Control: "A1.3 Recovery plan testing",
			Requirement: "Recovery plan procedures supporting system recovery are tested periodically.",
			Evidence:    "Drill records: the timeline of restore tests, their outcome, the RTO achieved against the objective, drills performed against the schedule, failures and their remediation.",
			Records:     drills},
		{Framework: "HIPAA Security Rule", Control: "164.308(a)(7)(ii)(B) Disaster recovery plan",
			Requirement: "Procedures to restore any loss of data are established.",
			Evidence:    "Drill records showing data restored from backup into a throwaway copy and verified by integrity checks, with the time it took.",
			Records:     drills},
		{Framework: "HIPAA Security Rule", Control: "164.308(a)(7)(ii)(D) Testing and revision procedures",
			Requirement: "Contingency plans are periodically tested and revised.",
			Evidence:    "Drills performed against the required frequency, missed windows, failures with their findings and the next passing drill (time to remediation).",
			Records:     drills},
		{Framework: "DORA (EU 2022/2554)", Control: "Art. 12 Backup policies and procedures, restoration and recovery",
			Requirement: "Backups are taken and periodically tested for restoration; recovery meets the objectives set.",
			Evidence:    "Audit records (backup age against the RPO, WAL archiving, copies kept apart) and drill records (restoration tested, RTO achieved against the objective).",
			Records:     drills + audits},
	}
}
