package audit

import (
	"context"
	"errors"
	"io"
	"strings"
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
		{name: "all copies, one locked", status: checks.Pass, msg: "4 copies of d2.dump (live database + 3 backups) on disk (live database) + object-storage, 2 offsite, 1 immutable"},
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
	if r := immutable(BucketLock{Enabled: true}, b, 30*24*time.Hour, t0, policy.ImmutableAny); !r.ok {
		t.Errorf("legal hold not immutable: %s", r.desc)
	}
}

// memReader is a location whose objects can also be read (copies.verify: read).
type memReader struct {
	*memBucket
	content map[string]string
	reads   int
}

func (m *memReader) Open(_ context.Context, key string) (io.ReadCloser, error) {
	v, ok := m.content[key]
	if !ok {
		return nil, errors.New("no such object")
	}
	m.reads++
	return io.NopCloser(strings.NewReader(v)), nil
}

// Issue 17 item 3: what makes a copy "the same bytes". The store's checksum wins over what the
// writer claims; a claim, a multipart ETag or the size alone counts only where copies.verify
// allows it; read compares real digests.
func TestCopyVerification(t *testing.T) {
	at := t0
	obj := func(size int64, store map[string]string, claimed map[string]string, etag string) Backup {
		return Backup{Key: "d.dump", Time: at, Size: size, Checksums: store, Claimed: claimed, ETag: etag}
	}
	s := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const shaA, shaB = "aa", "bb"
	tests := []struct {
		name          string
		mode          string
		primary, copy Backup
		// content, for read: the bytes at the primary and at the copy.
		pBytes, cBytes string
		status         string // the copy's row status
		compared       string
		finding        checks.Status
		reason         string
	}{
		{name: "the writer's sha256 matches but the store's CRC64NVME differs", mode: policy.VerifyStore,
			primary: obj(3, s("crc64nvme", "X"), s("sha256", shaA), ""), copy: obj(3, s("crc64nvme", "Y"), s("sha256", shaA), ""),
			status: "mismatch", compared: "store-crc64nvme", finding: checks.Fail, reason: ReasonCopyMismatch},
		{name: "store checksums match", mode: policy.VerifyStore,
			primary: obj(3, s("crc64nvme", "X"), nil, ""), copy: obj(3, s("crc64nvme", "X"), nil, ""),
			status: "copy", compared: "store-crc64nvme", finding: checks.Pass},
		{name: "single-part ETags are the store's MD5", mode: policy.VerifyStore,
			primary: obj(3, nil, nil, "e1"), copy: obj(3, nil, nil, "e1"), status: "copy", compared: ComparedETagMD5, finding: checks.Pass},
		{name: "only the writer's claim: not counted with verify store", mode: policy.VerifyStore,
			primary: obj(3, nil, s("sha256", shaA), ""), copy: obj(3, nil, s("sha256", shaA), ""),
			status: "unverified", compared: "claimed-sha256", finding: checks.Fail, reason: ReasonUnverifiedCopy},
		{name: "only the writer's claim: counted with verify claimed", mode: policy.VerifyClaimed,
			primary: obj(3, nil, s("sha256", shaA), ""), copy: obj(3, nil, s("sha256", shaA), ""),
			status: "copy", compared: "claimed-sha256", finding: checks.Pass},
		{name: "claims that differ are a mismatch", mode: policy.VerifyClaimed,
			primary: obj(3, nil, s("sha256", shaA), ""), copy: obj(3, nil, s("sha256", shaB), ""),
			status: "mismatch", compared: "claimed-sha256", finding: checks.Fail, reason: ReasonCopyMismatch},
		{name: "multipart ETags: not counted with verify store", mode: policy.VerifyStore,
			primary: obj(3, nil, nil, "abc-2"), copy: obj(3, nil, nil, "abc-2"),
			status: "unverified", compared: ComparedETagMultipart, finding: checks.Fail, reason: ReasonUnverifiedCopy},
		{name: "size only: not counted even with verify claimed", mode: policy.VerifyClaimed,
			primary: obj(3, nil, nil, ""), copy: obj(3, nil, nil, ""),
			status: "unverified", compared: ComparedSizeOnly, finding: checks.Fail, reason: ReasonUnverifiedCopy},
		{name: "read: the same bytes", mode: policy.VerifyRead,
			primary: obj(3, nil, s("sha256", shaA), ""), copy: obj(3, nil, s("sha256", shaA), ""), pBytes: "abc", cBytes: "abc",
			status: "copy", compared: ComparedRead, finding: checks.Pass},
		{name: "read: other bytes under the same claim", mode: policy.VerifyRead,
			primary: obj(3, nil, s("sha256", shaA), ""), copy: obj(3, nil, s("sha256", shaA), ""), pBytes: "abc", cBytes: "abd",
			status: "mismatch", compared: ComparedRead, finding: checks.Fail, reason: ReasonCopyMismatch},
		{name: "sizes differ: no read needed", mode: policy.VerifyRead,
			primary: obj(3, nil, nil, ""), copy: obj(4, nil, nil, ""), pBytes: "abc", cBytes: "abcd",
			status: "mismatch", compared: ComparedSize, finding: checks.Fail, reason: ReasonCopyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pm := &memReader{memBucket: &memBucket{objects: map[string]Backup{"d.dump": tt.primary}}, content: map[string]string{"d.dump": tt.pBytes}}
			cm := &memReader{memBucket: &memBucket{objects: map[string]Backup{"d.dump": tt.copy}}, content: map[string]string{"d.dump": tt.cBytes}}
			ps, cs := pm.state(t, "a", false), cm.state(t, "b", true)
			ps.Reader, cs.Reader, ps.Locker, cs.Locker = pm, cm, nil, nil
			spec := policy.CopiesAudit{MinCopies: 3, MinMedia: 1, MinOffsite: ptr(1), MinImmutable: ptr(0), MaxLag: policy.Duration{Duration: time.Hour},
				Verify: tt.mode, ReadBytesPerSecond: 1 << 20}
			f := CheckCopies(t.Context(), CopiesInput{Primary: "a", LiveDatabase: true, Spec: spec, MinBytes: 1, Now: at.Add(time.Minute),
				Sources: []*SourceState{ps, cs}})
			wantFinding(t, f, tt.finding, tt.reason, "")
			rows := f.Evidence["locations"].([]copyRow)
			if rows[1].Status != tt.status || rows[1].Compared != tt.compared {
				t.Errorf("copy row: status %s compared %s; want %s %s (%s)", rows[1].Status, rows[1].Compared, tt.status, tt.compared, rows[1].Detail)
			}
			if tt.mode == policy.VerifyRead && tt.compared == ComparedRead && (pm.reads != 1 || cm.reads != 1) {
				t.Errorf("read the primary %d and the copy %d times, want once each", pm.reads, cm.reads)
			}
		})
	}
}

// Issue 17 item 6: the lock mode is evidence, and copies.immutableMode: compliance does not
// count GOVERNANCE retention or a legal hold.
func TestImmutableMode(t *testing.T) {
	on := BucketLock{Enabled: true}
	until := t0.Add(40 * 24 * time.Hour)
	month := 30 * 24 * time.Hour
	tests := []struct {
		name     string
		bl       BucketLock
		lock     *ObjectLock
		mode     string
		ok       bool
		lockMode string
		desc     string
	}{
		{"COMPLIANCE retention, any", on, &ObjectLock{Mode: "COMPLIANCE", RetainUntil: until}, policy.ImmutableAny, true, "COMPLIANCE", "COMPLIANCE retention until"},
		{"GOVERNANCE retention, any", on, &ObjectLock{Mode: "GOVERNANCE", RetainUntil: until}, policy.ImmutableAny, true, "GOVERNANCE", "GOVERNANCE retention until"},
		{"GOVERNANCE retention, compliance", on, &ObjectLock{Mode: "GOVERNANCE", RetainUntil: until}, policy.ImmutableCompliance, false, "GOVERNANCE", "bypassed by a privileged user"},
		{"COMPLIANCE retention, compliance", on, &ObjectLock{Mode: "COMPLIANCE", RetainUntil: until}, policy.ImmutableCompliance, true, "COMPLIANCE", ""},
		{"legal hold only, compliance", on, &ObjectLock{LegalHold: true}, policy.ImmutableCompliance, false, "", "s3:PutObjectLegalHold"},
		{"GOVERNANCE default, compliance", BucketLock{Enabled: true, DefaultMode: "GOVERNANCE", DefaultRetention: month}, nil, policy.ImmutableCompliance, false, "GOVERNANCE", "default GOVERNANCE retention of 30d"},
		{"COMPLIANCE default, compliance", BucketLock{Enabled: true, DefaultMode: "COMPLIANCE", DefaultRetention: month}, nil, policy.ImmutableCompliance, true, "COMPLIANCE", "default COMPLIANCE retention of 30d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := immutable(tt.bl, &Backup{Time: t0, Lock: tt.lock}, month, t0.Add(time.Hour), tt.mode)
			if r.ok != tt.ok || r.mode != tt.lockMode || !strings.Contains(r.desc, tt.desc) {
				t.Errorf("immutable = %+v; want ok %v mode %q desc containing %q", r, tt.ok, tt.lockMode, tt.desc)
			}
		})
	}
}
