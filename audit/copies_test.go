package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
)

// memBucket is an in-memory location: listing, HEAD and a bucket lock configuration.
type memBucket struct {
	objects map[string]Backup
	lock    BucketLock
	lockErr error
}

func (m *memBucket) Scan(_ context.Context, visit func(Backup) error) error {
	for _, b := range m.objects {
		if err := visit(b); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBucket) Stat(_ context.Context, key string) (Backup, bool, error) {
	b, ok := m.objects[key]
	return b, ok, nil
}

func (m *memBucket) BucketLock(context.Context) (BucketLock, error) { return m.lock, m.lockErr }

func (m *memBucket) state(t *testing.T, name string, offsite bool) *SourceState {
	sum, err := Summarize(t.Context(), name, m, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &SourceState{Name: name, Where: "mem://" + name, Family: FamilyObjects, Media: policy.MediaObjectStorage,
		Offsite: offsite, Summary: sum, Stat: m, Locker: m}
}

func TestCheckCopies(t *testing.T) {
	uploaded := t0
	dump := func(key string, at time.Time, size int64, sha string) Backup {
		return Backup{Key: key, Time: at, Size: size, Checksums: map[string]string{"sha256": sha}}
	}
	d1 := dump("d1.dump", uploaded.Add(-24*time.Hour), 1000, "aa")
	d2 := dump("d2.dump", uploaded, 1000, "bb")
	locked := func(b Backup) Backup {
		b.Lock = &ObjectLock{Mode: "COMPLIANCE", RetainUntil: b.Time.Add(30 * 24 * time.Hour)}
		return b
	}
	type fixture struct{ a, b, c *memBucket }
	base := func() fixture {
		return fixture{
			a: &memBucket{objects: map[string]Backup{"d1.dump": d1, "d2.dump": d2}},
			b: &memBucket{objects: map[string]Backup{"d1.dump": d1, "d2.dump": d2}},
			c: &memBucket{objects: map[string]Backup{"d1.dump": locked(d1), "d2.dump": locked(d2)},
				lock: BucketLock{Enabled: true, DefaultMode: "COMPLIANCE", DefaultRetention: 30 * 24 * time.Hour}},
		}
	}
	spec := policy.CopiesAudit{MinCopies: 4, MinMedia: 2, MinOffsite: ptr(1), MinImmutable: ptr(1),
		ImmutableFor: policy.Duration{Duration: 30 * 24 * time.Hour}, MaxLag: policy.Duration{Duration: time.Hour}}
	tests := []struct {
		name   string
		mod    func(*fixture)
		now    time.Time
		spec   func(*policy.CopiesAudit)
		status checks.Status
		reason string
		msg    string
	}{
		{name: "all copies, one locked", status: checks.Pass, msg: "4 copies of d2.dump on disk + object-storage, 2 offsite, 1 immutable"},
		{name: "a copy removed", mod: func(f *fixture) { f.b.objects = map[string]Backup{} }, status: checks.Fail, reason: ReasonTooFewCopies, msg: "3 copies of d2.dump, need 4"},
		{name: "lock disabled", mod: func(f *fixture) { f.c.lock = BucketLock{} }, status: checks.Fail, reason: ReasonNoImmutable, msg: "Object Lock not enabled"},
		{name: "retention shorter than required", mod: func(f *fixture) {
			b := f.c.objects["d2.dump"]
			b.Lock.RetainUntil = b.Time.Add(7 * 24 * time.Hour)
			f.c.objects["d2.dump"] = b
		}, status: checks.Fail, reason: ReasonNoImmutable, msg: "shorter than 30d"},
		{name: "retention expired at the audit's clock", now: uploaded.Add(31 * 24 * time.Hour), spec: func(s *policy.CopiesAudit) { s.MaxLag.Duration = 60 * 24 * time.Hour },
			status: checks.Fail, reason: ReasonNoImmutable, msg: "expired"},
		{name: "bucket default retention without object retention", mod: func(f *fixture) {
			f.c.objects = map[string]Backup{"d1.dump": d1, "d2.dump": d2}
		}, status: checks.Pass},
		{name: "size corrupted", mod: func(f *fixture) {
			b := d2
			b.Size = 999
			f.b.objects["d2.dump"] = b
		}, status: checks.Fail, reason: ReasonCopyMismatch, msg: "size 999 bytes, primary 1000 bytes"},
		{name: "content corrupted, same size", mod: func(f *fixture) {
			b := d2
			b.Checksums = map[string]string{"sha256": "cc"}
			f.b.objects["d2.dump"] = b
		}, status: checks.Fail, reason: ReasonCopyMismatch, msg: "sha256 cc, primary bb"},
		{name: "newest not copied yet, within the lag", mod: func(f *fixture) { delete(f.b.objects, "d2.dump") }, now: uploaded.Add(10 * time.Minute), status: checks.Pass},
		{name: "newest not copied past the lag", mod: func(f *fixture) { delete(f.b.objects, "d2.dump") }, now: uploaded.Add(2 * time.Hour), status: checks.Fail, reason: ReasonStaleCopy, msg: "holds d1.dump but not d2.dump"},
		{name: "copy of an older version of the same key", mod: func(f *fixture) {
			b := d2
			b.Time = uploaded.Add(-3 * time.Hour)
			f.b.objects["d2.dump"] = b
		}, status: checks.Fail, reason: ReasonStaleCopy, msg: "3h00m older than the primary's"},
		{name: "nothing offsite", mod: func(f *fixture) {}, spec: func(s *policy.CopiesAudit) {}, status: checks.Pass},
		{name: "one kind of media", spec: func(s *policy.CopiesAudit) { s.MinCopies = 3 }, status: checks.Fail, reason: ReasonTooFewMedia},
		{name: "lock configuration unreadable", mod: func(f *fixture) { f.c.lockErr = errors.New("AccessDenied") }, spec: func(s *policy.CopiesAudit) { s.MinImmutable = ptr(0) }, status: checks.Error, reason: ReasonUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			if tt.mod != nil {
				tt.mod(&f)
			}
			sp := spec
			live := true
			if tt.spec != nil {
				tt.spec(&sp)
			}
			offsiteB := true
			if tt.name == "nothing offsite" {
				offsiteB = false
			}
			if tt.name == "one kind of media" {
				live = false
			}
			now := tt.now
			if now.IsZero() {
				now = uploaded.Add(time.Minute)
			}
			in := CopiesInput{Primary: "a", LiveDatabase: live, Spec: sp, MinBytes: 1, Now: now,
				Sources: []*SourceState{f.a.state(t, "a", false), f.b.state(t, "b", offsiteB), f.c.state(t, "c", true)}}
			got := CheckCopies(t.Context(), in)
			wantFinding(t, got, tt.status, tt.reason, tt.msg)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestImmutableLegalHold(t *testing.T) {
	b := &Backup{Time: t0, Lock: &ObjectLock{LegalHold: true}}
	if ok, why := immutable(BucketLock{Enabled: true}, b, 30*24*time.Hour, t0); !ok {
		t.Errorf("legal hold not immutable: %s", why)
	}
}
