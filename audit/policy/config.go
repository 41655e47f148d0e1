package policy

// The root of the file, and validation's walk through it: each subject's keys are
// checked by a validateX in the subject's own file (targets.go, snapshot.go, ...).

import (
	"fmt"
	"regexp"
	"strings"

	_ "github.com/firedrill/firedrill/restore/engine/builtin" // the engines firedrill ships
)

// Config is a validated firedrill configuration, the root of the file. Build it with Load or Parse.
type Config struct {
	Targets []Target `yaml:"targets" json:"targets"`
	History History  `yaml:"history" json:"history"`
	// Groups are targets snapshotted together under one batch id (snapshot.go).
	Groups []Group `yaml:"groups" json:"groups,omitempty"`
	// Locations are where backup copies live, for the auditor (locations.go).
	Locations []Location `yaml:"locations" json:"locations,omitempty"`
	// Serve configures the long-running daemon (serve.go).
	Serve Serve `yaml:"serve" json:"serve"`
	// Notifications are where outcomes are sent (serve.go).
	Notifications []Notification `yaml:"notifications" json:"notifications,omitempty"`
	// File is where the configuration was read from ("" for an embedded one).
	File string `yaml:"-" json:"-"`
}

func validate(c *Config, file string, idx *nodeIndex) Errors {
	var errs Errors
	add := func(key, format string, a ...any) {
		errs = append(errs, &Error{File: file, Line: idx.lineOf(key), Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	locs := validateLocations(c, add)
	if len(c.Targets) == 0 {
		add("targets", "no targets: list at least one database under targets:")
	}
	seen := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d]", i)
		validateTarget(p, i, t, seen, add)
		validateSnapshot(p, t, add)
		validateRetention(p+".retention", t.Retention, add)
		validateRestore(p, t, add)
		validateDumpLocation(c, p+".restore.source", &t.Restore.Source, locs, add)
		validateArchiveLocation(c, p+".restore.source", &t.Restore.Source, locs, add)
		validateAuditOnly(p, t, add)
		validateObjectives(p+".objectives", t.Objectives, add)
		validateChecks(p+".checks", t.Engine, t.Checks, add)
		validateAuditSpec(c, p+".audit", t, locs, add)
	}
	validateGroups(c, add)
	validateServe(c, add)
	validatePaths(c, add, idx.lineOf)
	validateEnvNames(c, add)
	return errs
}

// addFunc records a validation problem at a key path.
type addFunc = func(key, format string, a ...any)

func oneOf(add func(key, format string, a ...any), key, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	add(key, "%q is not supported (supported: %s)", v, strings.Join(allowed, ", "))
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
