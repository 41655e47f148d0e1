package policy

// locations[]: where backup copies live (S3 buckets, directories, snapshot repositories).

import (
	"fmt"
	"net/url"
	"strings"
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

var supportedLocationKinds = []string{LocationS3, LocationDirectory, LocationSnapshots}

// Location is locations[]: a place backup copies live (an S3 bucket, a directory, a snapshot repository).
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

// S3Location is locations[].s3: an S3 bucket. Credentials come from the standard AWS chain (environment,
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

// S3Credentials is locations[].s3.credentials: it names where the keys are; it never holds them.
type S3Credentials struct {
	AccessKeyIDEnv     string `yaml:"accessKeyIdEnv" json:"accessKeyIdEnv,omitempty"`
	SecretAccessKeyEnv string `yaml:"secretAccessKeyEnv" json:"secretAccessKeyEnv,omitempty"`
	SessionTokenEnv    string `yaml:"sessionTokenEnv" json:"sessionTokenEnv,omitempty"`
	// File is a shared credentials file (the ~/.aws/credentials format); Profile picks a section.
	File    string `yaml:"file" json:"file,omitempty"`
	Profile string `yaml:"profile" json:"profile,omitempty"`
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

// validateLocations checks locations and returns the index of each validly named one.
func validateLocations(c *Config, add addFunc) map[string]int {
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
	return locs
}
