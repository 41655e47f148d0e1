package policy

// Auditor configuration: backup locations and per-target audit rules.

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// Location kinds.
const (
	// LocationS3 is a bucket (and optional prefix) on an S3-compatible endpoint.
	LocationS3 = "s3"
	// LocationDirectory is a directory of backup files (dump mirrors, NFS mounts).
	LocationDirectory = "directory"
	// LocationSnapshots is a firedrill local snapshot repository.
	LocationSnapshots = "snapshots"
)

// Media kinds, for the 3-2-1 rule's "two kinds of media".
const (
	MediaObjectStorage = "object-storage"
	MediaDisk          = "disk"
	MediaVolumeSnap    = "volume-snapshot"
)

// Audit check names, usable in audit.skip.
const (
	CheckWALArchiving = "wal-archiving"
	CheckBackupAge    = "backup-age"
	// CheckBackupIntegrity fails while a snapshot repository holds a damaged snapshot (metadata
	// missing or unreadable) or a foreign one (another target's).
	CheckBackupIntegrity = "backup-integrity"
	CheckBackupSize      = "backup-size"
	CheckCopies          = "copies-3-2-1"
	CheckDrillRecency    = "drill-recency"
)

// AuditChecks lists every audit check, in the order reports show them.
var AuditChecks = []string{CheckWALArchiving, CheckBackupAge, CheckBackupIntegrity, CheckBackupSize, CheckCopies, CheckDrillRecency}

// Auditor defaults (the README's reference repeats them).
const (
	DefaultAuditMaxReady     = 16
	DefaultAuditIdleWALBytes = 8 << 10
	DefaultAuditMinBytes     = 1
	DefaultAuditMaxDrop      = 0.5
	DefaultAuditMaxGrowth    = 1.0
	DefaultAuditSizeHistory  = 7
	DefaultAuditMinCopies    = 3
	DefaultAuditMinMedia     = 2
	DefaultAuditMinOffsite   = 1
	DefaultAuditMinImmutable = 1
	DefaultAuditImmutableFor = 30 * 24 * time.Hour
	DefaultAuditSourceName   = "snapshots"
	// DefaultAuditFailureGrace: the archiver retries a failed segment about every minute, so a
	// segment that still waits five minutes after a failed attempt is stuck, not unlucky.
	DefaultAuditFailureGrace = 5 * time.Minute
	DefaultAuditVerify       = VerifyStore
	// DefaultAuditImmutableMode counts GOVERNANCE and COMPLIANCE retention alike.
	DefaultAuditImmutableMode = ImmutableAny
	// DefaultAuditReadBytesPerSecond bounds copies.verify: read (64 MiB/s for all reads of a check).
	DefaultAuditReadBytesPerSecond = 64 << 20
)

// How the 3-2-1 check verifies that a copy holds the same bytes as the primary (copies.verify).
const (
	// VerifyStore counts a copy only when a checksum the store computed (x-amz-checksum-*, or a
	// single-part ETag) matches the primary's.
	VerifyStore = "store"
	// VerifyClaimed also accepts checksums the writer supplied (x-amz-meta-sha256, .sha256
	// sidecars) and multipart ETags.
	VerifyClaimed = "claimed"
	// VerifyRead downloads and hashes the newest backup at every location.
	VerifyRead = "read"
)

// Which Object Lock retention counts as immutable (copies.immutableMode).
const (
	// ImmutableAny counts GOVERNANCE and COMPLIANCE retention and legal holds.
	ImmutableAny = "any"
	// ImmutableCompliance counts only COMPLIANCE retention: GOVERNANCE retention and legal holds
	// can be lifted by a privileged user.
	ImmutableCompliance = "compliance"
)

var supportedLocationKinds = []string{LocationS3, LocationDirectory, LocationSnapshots}

// Location is a place backup copies live (an S3 bucket, a directory, a snapshot repository).
// Locations are shared by targets: a target's audit.sources pick a location and a prefix in it.
type Location struct {
	Name string `yaml:"name" json:"name"`
	// Kind is s3, directory or snapshots (CSI VolumeSnapshots plug in as another kind).
	Kind string `yaml:"kind" json:"kind"`
	// Media is the kind of storage for the 3-2-1 rule; defaults by kind: s3 object-storage,
	// directory and snapshots disk.
	Media string `yaml:"media" json:"media"`
	// Region and Provider say where the location is. For s3 they default to s3.region and to
	// the endpoint's host:port ("aws" without an endpoint). A location is offsite when its region
	// or provider differs from the target's site.
	Region   string `yaml:"region" json:"region,omitempty"`
	Provider string `yaml:"provider" json:"provider,omitempty"`
	// Offsite overrides the region/provider comparison (e.g. a directory on an NFS mount in
	// another data centre). Directories and snapshot repositories are onsite unless it is set.
	Offsite *bool      `yaml:"offsite" json:"offsite,omitempty"`
	S3      S3Location `yaml:"s3" json:"s3,omitempty"`
	// Path is the directory of a directory or snapshots location.
	Path string `yaml:"path" json:"path,omitempty"`
}

// S3Location is an S3 bucket. Credentials come from the standard AWS chain (environment,
// shared files, instance roles) unless Credentials names environment variables or a file.
type S3Location struct {
	Endpoint    string        `yaml:"endpoint" json:"endpoint,omitempty"`
	Region      string        `yaml:"region" json:"region,omitempty"`
	Bucket      string        `yaml:"bucket" json:"bucket,omitempty"`
	Prefix      string        `yaml:"prefix" json:"prefix,omitempty"`
	PathStyle   bool          `yaml:"pathStyle" json:"pathStyle,omitempty"`
	Credentials S3Credentials `yaml:"credentials" json:"credentials,omitempty"`
	// MaxAttempts bounds retries of one request (default: the SDK's, 3).
	MaxAttempts int `yaml:"maxAttempts" json:"maxAttempts,omitempty"`
}

// S3Credentials names where the keys are; it never holds them.
type S3Credentials struct {
	AccessKeyIDEnv     string `yaml:"accessKeyIdEnv" json:"accessKeyIdEnv,omitempty"`
	SecretAccessKeyEnv string `yaml:"secretAccessKeyEnv" json:"secretAccessKeyEnv,omitempty"`
	SessionTokenEnv    string `yaml:"sessionTokenEnv" json:"sessionTokenEnv,omitempty"`
	// File is a shared credentials file (the ~/.aws/credentials format); Profile picks a section.
	File    string `yaml:"file" json:"file,omitempty"`
	Profile string `yaml:"profile" json:"profile,omitempty"`
}

// AuditSpec configures the auditor's checks of one target.
type AuditSpec struct {
	// Skip names checks not to run for this target (see AuditChecks).
	Skip []string `yaml:"skip" json:"skip,omitempty"`
	// Sources are where this target's backups are. Default: the target's own snapshots (local
	// repository or CSI VolumeSnapshots) as a source named "snapshots".
	Sources []AuditSource `yaml:"sources" json:"sources"`
	// Site is where the database runs, for the offsite rule. Default: the region and provider
	// of the primary source's location.
	Site   Site        `yaml:"site" json:"site"`
	WAL    WALAudit    `yaml:"wal" json:"wal"`
	Size   SizeAudit   `yaml:"size" json:"size"`
	Copies CopiesAudit `yaml:"copies" json:"copies"`
	// FutureTolerance is how far ahead of the audit's clock a backup may be dated (clock skew)
	// before it is reported as future-dated and left out of the age, size and copy checks.
	FutureTolerance Duration `yaml:"futureTolerance" json:"futureTolerance"`
}

// AuditSource is one place a target's backups are listed from.
type AuditSource struct {
	// Name defaults to the location's name.
	Name string `yaml:"name" json:"name"`
	// Location is a locations[].name. Empty means the target's own snapshots, from its snapshot
	// driver (the local repository or CSI VolumeSnapshots).
	Location string `yaml:"location" json:"location,omitempty"`
	// Prefix is joined to the location's prefix (S3) or path (directory).
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Match is a glob on an object's base name, e.g. "*.dump"; empty means the common dump
	// and archive suffixes (DumpSuffixes). Checksum sidecars never match.
	Match string `yaml:"match" json:"match,omitempty"`
}

// Site is where a target's database runs.
type Site struct {
	Region   string `yaml:"region" json:"region,omitempty"`
	Provider string `yaml:"provider" json:"provider,omitempty"`
}

// WALAudit configures the WAL-archiving check (PostgreSQL targets).
type WALAudit struct {
	// MaxReady is the most segments allowed to wait for archiving (.ready files).
	MaxReady int `yaml:"maxReady" json:"maxReady"`
	// IdleWALBytes is how much WAL past the last archived segment still counts as an idle
	// server: PostgreSQL writes a few hundred bytes of housekeeping records (running
	// transactions, checkpoints) after a segment switch on a server nobody writes to.
	IdleWALBytes int64 `yaml:"idleWalBytes" json:"idleWalBytes"`
	// MaxReplicationLag, when set, fails a standby whose replay lag exceeds it.
	MaxReplicationLag Duration `yaml:"maxReplicationLag" json:"maxReplicationLag"`
	// FailureGrace is how long a segment may wait after a failed archive attempt before
	// archiving counts as failing; failures the archiver got past sooner are a warning.
	FailureGrace Duration `yaml:"failureGrace" json:"failureGrace"`
	// Archive is where archive_command puts segments. When set, the check looks there for the
	// last segment pg_stat_archiver names and for gaps since the newest base backup.
	Archive *WALArchive `yaml:"archive" json:"archive,omitempty"`
}

// WALArchive is a WAL archive: a directory (Path), or a prefix in a location (an S3 bucket or
// a directory location). Segments sit directly under it, named as PostgreSQL names them,
// optionally with a compression suffix (.gz, .zst, .lz4, .bz2, .xz).
type WALArchive struct {
	Path     string `yaml:"path" json:"path,omitempty"`
	Location string `yaml:"location" json:"location,omitempty"`
	Prefix   string `yaml:"prefix" json:"prefix,omitempty"`
}

// SizeAudit configures the backup-size check.
type SizeAudit struct {
	// MinBytes is the floor below which a backup is empty or truncated (default 1: zero-byte).
	MinBytes int64 `yaml:"minBytes" json:"minBytes"`
	// MaxDrop fails a newest backup this fraction or more smaller than the median of the
	// previous History backups (0.5: half the size or less).
	MaxDrop float64 `yaml:"maxDrop" json:"maxDrop"`
	// MaxGrowth warns when the newest backup is this fraction or more larger (1.0: double).
	MaxGrowth float64 `yaml:"maxGrowth" json:"maxGrowth"`
	// History is how many previous backups the median is taken over.
	History int `yaml:"history" json:"history"`
}

// CopiesAudit configures the 3-2-1 check of a target's newest backup.
type CopiesAudit struct {
	// Primary is the source whose newest backup is "the backup" (default: the first source).
	Primary string `yaml:"primary" json:"primary,omitempty"`
	// In lists the sources holding copies (default: every source).
	In []string `yaml:"in" json:"in,omitempty"`
	// LiveDatabase counts the production database itself as a copy on disk, onsite (default true).
	LiveDatabase *bool `yaml:"liveDatabase" json:"liveDatabase,omitempty"`
	MinCopies    int   `yaml:"minCopies" json:"minCopies"`
	MinMedia     int   `yaml:"minMedia" json:"minMedia"`
	// MinOffsite and MinImmutable may be set to 0 to drop the rule (default 1 each).
	MinOffsite   *int `yaml:"minOffsite" json:"minOffsite"`
	MinImmutable *int `yaml:"minImmutable" json:"minImmutable"`
	// ImmutableFor is the retention an Object Lock must guarantee to count as immutable.
	ImmutableFor Duration `yaml:"immutableFor" json:"immutableFor"`
	// MaxLag is how far a copy may trail the primary backup (default: objectives.rpo).
	MaxLag Duration `yaml:"maxLag" json:"maxLag"`
	// Verify is what makes a copy count as the same bytes: store, claimed or read.
	Verify string `yaml:"verify" json:"verify"`
	// ReadBytesPerSecond bounds the reads of verify: read, all locations together.
	ReadBytesPerSecond int64 `yaml:"readBytesPerSecond" json:"readBytesPerSecond"`
	// ImmutableMode is any (GOVERNANCE or COMPLIANCE retention, legal hold) or compliance.
	ImmutableMode string `yaml:"immutableMode" json:"immutableMode"`
}

// Skips reports whether the target's audit skips check name.
func (a *AuditSpec) Skips(name string) bool {
	for _, s := range a.Skip {
		if s == name {
			return true
		}
	}
	return false
}

// Location returns the location called name.
func (c *Config) Location(name string) (*Location, bool) {
	for i := range c.Locations {
		if c.Locations[i].Name == name {
			return &c.Locations[i], true
		}
	}
	return nil, false
}

// IsOffsite says whether a location is offsite from site.
func (l *Location) IsOffsite(site Site) bool {
	if l.Offsite != nil {
		return *l.Offsite
	}
	if l.Kind != LocationS3 {
		return false
	}
	return l.Region != site.Region || l.Provider != site.Provider
}

// Redacted returns an endpoint without user information or query, safe to print.
func Redacted(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "(endpoint)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func validateAudit(c *Config, add addFunc) {
	validateEnvNames(c, add)
	locs := map[string]int{}
	for i := range c.Locations {
		l := &c.Locations[i]
		p := fmt.Sprintf("locations[%d]", i)
		switch {
		case l.Name == "":
			add(p+".name", "required: a short name such as offsite-eu")
		case !nameRe.MatchString(l.Name):
			add(p+".name", "%q is not a valid name: lowercase letters, digits and '-', at most 63", l.Name)
		default:
			if j, dup := locs[l.Name]; dup {
				add(p+".name", "duplicate location name %q (also locations[%d])", l.Name, j)
			}
			locs[l.Name] = i
		}
		oneOf(add, p+".kind", l.Kind, supportedLocationKinds)
		if l.Media != "" {
			oneOf(add, p+".media", l.Media, []string{MediaObjectStorage, MediaDisk, MediaVolumeSnap})
		}
		switch l.Kind {
		case LocationS3:
			s := &l.S3
			if s.Bucket == "" {
				add(p+".s3.bucket", "required with kind s3: the bucket's name")
			}
			if s.Endpoint != "" {
				if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					add(p+".s3.endpoint", "not an http(s) URL: use e.g. https://s3.eu-central-1.example.com")
				} else if u.User != nil {
					add(p+".s3.endpoint", "must not hold credentials: use s3.credentials")
				}
			}
			if s.Region == "" {
				add(p+".s3.region", "required with kind s3: the bucket's region (us-east-1 for most S3-compatible servers)")
			}
			cr := s.Credentials
			if (cr.AccessKeyIDEnv == "") != (cr.SecretAccessKeyEnv == "") {
				add(p+".s3.credentials", "accessKeyIdEnv and secretAccessKeyEnv go together")
			}
			if cr.AccessKeyIDEnv != "" && cr.File != "" {
				add(p+".s3.credentials", "set environment variable names or a file, not both")
			}
			if cr.SessionTokenEnv != "" && cr.AccessKeyIDEnv == "" {
				add(p+".s3.credentials.sessionTokenEnv", "needs accessKeyIdEnv and secretAccessKeyEnv")
			}
			if cr.Profile != "" && cr.File == "" && cr.AccessKeyIDEnv != "" {
				add(p+".s3.credentials.profile", "a profile selects a section of a credentials file: set file")
			}
			if s.MaxAttempts < 0 || s.MaxAttempts > 10 {
				add(p+".s3.maxAttempts", "must be between 1 and 10, got %d", s.MaxAttempts)
			}
			if l.Path != "" {
				add(p+".path", "not used with kind s3 (use s3.prefix)")
			}
		case LocationDirectory, LocationSnapshots:
			if l.Path == "" {
				add(p+".path", "required with kind %s: the directory", l.Kind)
			}
			if l.S3 != (S3Location{}) {
				add(p+".s3", "only used with kind s3")
			}
		}
	}
	known := map[string]bool{}
	for _, n := range AuditChecks {
		known[n] = true
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		a := &t.Audit
		p := fmt.Sprintf("targets[%d].audit", i)
		for j, s := range a.Skip {
			if !known[s] {
				add(fmt.Sprintf("%s.skip[%d]", p, j), "unknown check %q (checks: %s)", s, strings.Join(AuditChecks, ", "))
			}
		}
		names := map[string]bool{}
		for j := range a.Sources {
			s := &a.Sources[j]
			sp := fmt.Sprintf("%s.sources[%d]", p, j)
			if s.Location != "" {
				if _, ok := locs[s.Location]; !ok {
					add(sp+".location", "no location %q under locations:", s.Location)
				}
			} else if !hasOwnSnapshots(t) {
				add(sp+".location", "required: this target has no snapshot repository to default to")
			}
			if !nameRe.MatchString(s.Name) {
				add(sp+".name", "%q is not a valid name: lowercase letters, digits and '-', at most 63", s.Name)
			} else if names[s.Name] {
				add(sp+".name", "duplicate source name %q", s.Name)
			}
			names[s.Name] = true
			if s.Match != "" {
				if _, err := path.Match(s.Match, "x"); err != nil {
					add(sp+".match", "not a valid glob: %s", err.Error())
				}
			}
		}
		w := a.WAL
		if w.MaxReady < 1 {
			add(p+".wal.maxReady", "must be 1 or more, got %d", w.MaxReady)
		}
		if w.IdleWALBytes < 0 {
			add(p+".wal.idleWalBytes", "must be zero or more, got %d", w.IdleWALBytes)
		}
		sz := a.Size
		if sz.MinBytes < 1 {
			add(p+".size.minBytes", "must be 1 or more (a zero-byte backup is never good), got %d", sz.MinBytes)
		}
		if sz.MaxDrop <= 0 || sz.MaxDrop > 1 {
			add(p+".size.maxDrop", "must be a fraction in (0, 1], e.g. 0.5 for half, got %v", sz.MaxDrop)
		}
		if sz.MaxGrowth <= 0 {
			add(p+".size.maxGrowth", "must be a positive fraction, e.g. 1.0 for double, got %v", sz.MaxGrowth)
		}
		if sz.History < 1 || sz.History > 100 {
			add(p+".size.history", "must be between 1 and 100, got %d", sz.History)
		}
		cp := a.Copies
		if cp.Primary != "" && !names[cp.Primary] {
			add(p+".copies.primary", "no source %q in audit.sources", cp.Primary)
		}
		for j, n := range cp.In {
			if !names[n] {
				add(fmt.Sprintf("%s.copies.in[%d]", p, j), "no source %q in audit.sources", n)
			}
		}
		if cp.MinCopies < 1 {
			add(p+".copies.minCopies", "must be 1 or more, got %d", cp.MinCopies)
		}
		if cp.MinMedia < 1 {
			add(p+".copies.minMedia", "must be 1 or more, got %d", cp.MinMedia)
		}
		if v := cp.MinOffsite; v != nil && *v < 0 {
			add(p+".copies.minOffsite", "must be zero or more, got %d", *v)
		}
		if v := cp.MinImmutable; v != nil && *v < 0 {
			add(p+".copies.minImmutable", "must be zero or more, got %d", *v)
		}
		oneOf(add, p+".copies.verify", cp.Verify, []string{VerifyStore, VerifyClaimed, VerifyRead})
		oneOf(add, p+".copies.immutableMode", cp.ImmutableMode, []string{ImmutableAny, ImmutableCompliance})
		if cp.ReadBytesPerSecond < 1<<20 {
			add(p+".copies.readBytesPerSecond", "must be at least 1048576 (1 MiB/s), got %d", cp.ReadBytesPerSecond)
		}
		if a.FutureTolerance.Duration < 0 {
			add(p+".futureTolerance", "must be zero or more")
		}
		if w.FailureGrace.IsSet() && w.FailureGrace.Duration <= 0 {
			add(p+".wal.failureGrace", "must be greater than zero (leave it out for the default, %s)", DefaultAuditFailureGrace)
		}
		if ar := w.Archive; ar != nil {
			ap := p + ".wal.archive"
			switch {
			case ar.Path == "" && ar.Location == "":
				add(ap, "set path (a directory) or location (a locations[] name) and prefix")
			case ar.Path != "" && ar.Location != "":
				add(ap, "set path or location, not both")
			case ar.Path != "" && ar.Prefix != "":
				add(ap+".prefix", "only used with location (put it in path)")
			case ar.Location != "":
				if j, ok := locs[ar.Location]; !ok {
					add(ap+".location", "no location %q under locations:", ar.Location)
				} else if k := c.Locations[j].Kind; k != LocationS3 && k != LocationDirectory {
					add(ap+".location", "location %q is of kind %s: a WAL archive is an s3 prefix or a directory", ar.Location, k)
				}
			}
		}
	}
}

// envNameRe is what a POSIX shell accepts as an environment variable's name.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// accessKeyIDRe matches AWS access key ids (long-term AKIA, temporary ASIA, ...).
var accessKeyIDRe = regexp.MustCompile(`^(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{12,}$`)

// validateEnvNames checks every key whose name ends in "Env" (accessKeyIdEnv, dsnEnv, ...):
// its value must name an environment variable. The value itself is never repeated: a key put
// where its variable's name belongs is the mistake this catches, and errors are printed.
func validateEnvNames(c *Config, add addFunc) {
	walkEnvKeys(reflect.ValueOf(c).Elem(), "", func(key, v string) {
		switch {
		case v == "":
		case !envNameRe.MatchString(v):
			add(key, "must be the name of an environment variable (letters, digits and '_', not starting with a digit); "+
				"the value given is not one and is not repeated here, in case it is a secret")
		case LooksLikeCredential(v):
			add(key, "looks like a credential rather than the name of an environment variable: put the credential in "+
				"an environment variable and name the variable here (the value is not repeated)")
		}
	})
}

// IsEnvName reports whether v can name an environment variable and does not look like a
// credential: what may be printed of a *Env value.
func IsEnvName(v string) bool { return envNameRe.MatchString(v) && !LooksLikeCredential(v) }

// LooksLikeCredential reports whether a would-be variable name looks like a key instead: an
// AWS access key id, or a long random-looking word (mixed case and digits, no '_'), as a
// secret access key without '/' or '+' is.
func LooksLikeCredential(v string) bool {
	if accessKeyIDRe.MatchString(v) {
		return true
	}
	if len(v) < 20 || strings.Contains(v, "_") {
		return false
	}
	var lower, upper, digit bool
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	return lower && upper && digit
}

// walkEnvKeys calls f with the key path (as validation errors spell it) and value of every
// string field whose YAML key ends in "Env".
func walkEnvKeys(v reflect.Value, path string, f func(key, v string)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkEnvKeys(v.Elem(), path, f)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkEnvKeys(v.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name := tagName(sf)
			if !sf.IsExported() || name == "-" || name == "" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.String && strings.HasSuffix(name, "Env") {
				f(p, fv.String())
				continue
			}
			walkEnvKeys(fv, p, f)
		}
	}
}

// WALArchiveDir is the directory of a target's WAL archive when it is one (audit.wal.archive
// with a path, or a prefix of a directory location); false for none or an S3 archive.
func (c *Config) WALArchiveDir(t *Target) (string, bool) {
	ar := t.Audit.WAL.Archive
	switch {
	case ar == nil:
		return "", false
	case ar.Path != "":
		return ar.Path, true
	}
	l, ok := c.Location(ar.Location)
	if !ok || l.Kind != LocationDirectory {
		return "", false
	}
	return filepath.Join(l.Path, filepath.FromSlash(path.Clean("/"+ar.Prefix))), true
}

func applyAuditDefaults(c *Config) {
	base := ""
	if c.File != "" {
		base = filepath.Dir(c.File)
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) && base != "" {
			*p = filepath.Join(base, *p)
		}
	}
	for i := range c.Locations {
		l := &c.Locations[i]
		switch l.Kind {
		case LocationS3:
			setStr(&l.Media, MediaObjectStorage)
			setStr(&l.Region, l.S3.Region)
			setStr(&l.Provider, providerOf(l.S3.Endpoint))
			abs(&l.S3.Credentials.File)
		case LocationDirectory, LocationSnapshots:
			setStr(&l.Media, MediaDisk)
			abs(&l.Path)
		}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		a := &t.Audit
		if len(a.Sources) == 0 && hasOwnSnapshots(t) {
			a.Sources = []AuditSource{{Name: DefaultAuditSourceName}}
		}
		for j := range a.Sources {
			s := &a.Sources[j]
			if s.Location == "" {
				setStr(&s.Name, DefaultAuditSourceName)
			}
			setStr(&s.Name, s.Location)
		}
		if a.WAL.MaxReady == 0 {
			a.WAL.MaxReady = DefaultAuditMaxReady
		}
		if a.WAL.IdleWALBytes == 0 {
			a.WAL.IdleWALBytes = DefaultAuditIdleWALBytes
		}
		setDur(&a.WAL.FailureGrace, DefaultAuditFailureGrace)
		if a.WAL.Archive != nil {
			abs(&a.WAL.Archive.Path)
		}
		setDur(&a.FutureTolerance, DefaultAuditFutureTolerance)
		if a.Size.MinBytes == 0 {
			a.Size.MinBytes = DefaultAuditMinBytes
		}
		if a.Size.MaxDrop == 0 {
			a.Size.MaxDrop = DefaultAuditMaxDrop
		}
		if a.Size.MaxGrowth == 0 {
			a.Size.MaxGrowth = DefaultAuditMaxGrowth
		}
		if a.Size.History == 0 {
			a.Size.History = DefaultAuditSizeHistory
		}
		cp := &a.Copies
		if cp.Primary == "" && len(a.Sources) > 0 {
			cp.Primary = a.Sources[0].Name
		}
		if len(cp.In) == 0 {
			for _, s := range a.Sources {
				cp.In = append(cp.In, s.Name)
			}
		}
		if cp.LiveDatabase == nil {
			cp.LiveDatabase = ptr(true)
		}
		if cp.MinCopies == 0 {
			cp.MinCopies = DefaultAuditMinCopies
		}
		if cp.MinMedia == 0 {
			cp.MinMedia = DefaultAuditMinMedia
		}
		if cp.MinOffsite == nil {
			cp.MinOffsite = ptr(DefaultAuditMinOffsite)
		}
		if cp.MinImmutable == nil {
			cp.MinImmutable = ptr(DefaultAuditMinImmutable)
		}
		setDur(&cp.ImmutableFor, DefaultAuditImmutableFor)
		setStr(&cp.Verify, DefaultAuditVerify)
		setStr(&cp.ImmutableMode, DefaultAuditImmutableMode)
		if cp.ReadBytesPerSecond == 0 {
			cp.ReadBytesPerSecond = DefaultAuditReadBytesPerSecond
		}
		setDur(&cp.MaxLag, t.Objectives.RPO.Duration)
		if a.Site == (Site{}) {
			for _, s := range a.Sources {
				if s.Name != cp.Primary || s.Location == "" {
					continue
				}
				if l, ok := c.Location(s.Location); ok {
					a.Site = Site{Region: l.Region, Provider: l.Provider}
				}
			}
		}
	}
}

// hasOwnSnapshots says whether a target's snapshot driver keeps snapshots the auditor can list.
func hasOwnSnapshots(t *Target) bool {
	return t.Snapshot.Driver == "csi" || t.Snapshot.Local.Repository != ""
}

// providerOf names the provider of an S3 endpoint: its host:port, or "aws" without one.
func providerOf(endpoint string) string {
	if endpoint == "" {
		return "aws"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return endpoint
	}
	if strings.HasSuffix(u.Hostname(), ".amazonaws.com") {
		return "aws"
	}
	return u.Host
}
