package policy

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/firedrill/firedrill/restore/engine"
	_ "github.com/firedrill/firedrill/restore/engine/builtin" // the engines firedrill ships
)

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Drivers and runtimes this build supports; later ones extend these lists. Engines and their
// modes are the engine registry's (restore/engine): engine.Names() and engine.AllModes().
var (
	supportedDrivers  = []string{"local", "csi"}
	supportedRuntimes = []string{"local", "docker", "kubernetes"}
	supportedListen   = []string{"socket", "tcp"}
)

// addFunc records a validation problem at a key path.
type addFunc = func(key, format string, a ...any)

func validate(c *Config, file string, idx *nodeIndex) Errors {
	var errs Errors
	add := func(key, format string, a ...any) {
		errs = append(errs, &Error{File: file, Line: idx.lineOf(key), Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	if len(c.Targets) == 0 {
		add("targets", "no targets: list at least one database under targets:")
	}
	seen := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d]", i)
		switch {
		case t.Name == "":
			add(p+".name", "required: a short name such as orders")
		case !nameRe.MatchString(t.Name):
			add(p+".name", "%q is not a valid name: lowercase letters, digits and '-', at most 63", t.Name)
		default:
			if j, dup := seen[t.Name]; dup {
				add(p+".name", "duplicate target name %q (also targets[%d])", t.Name, j)
			}
			seen[t.Name] = i
		}
		oneOf(add, p+".engine", t.Engine, engine.Names())
		switch {
		case t.Connection.DSN == "" && t.Connection.DSNEnv == "":
			add(p+".connection", "required: dsn or dsnEnv (the name of an environment variable holding the DSN)")
		case t.Connection.DSN != "" && t.Connection.DSNEnv != "":
			add(p+".connection", "set dsn or dsnEnv, not both")
		case t.Connection.DSN != "":
			if err := DSNProblem(t.Engine, t.Connection.DSN); err != nil {
				add(p+".connection.dsn", "malformed DSN: %s", err.Error())
			}
		}
		oneOf(add, p+".snapshot.driver", t.Snapshot.Driver, supportedDrivers)
		oneOf(add, p+".snapshot.mode", t.Snapshot.Mode, engine.AllModes())
		validateEngineMode(t, p, add)
		if t.Snapshot.Driver == "local" {
			if t.Snapshot.Local.DataDir == "" {
				add(p+".snapshot.local.dataDir", "required with driver local: the database's data directory")
			}
			if t.Snapshot.Local.Repository == "" {
				add(p+".snapshot.local.repository", "required with driver local: the directory that keeps this target's snapshots")
			}
		}
		if n := t.Snapshot.Local.Parallel; n < 1 || n > 64 {
			add(p+".snapshot.local.parallel", "must be between 1 and 64, got %d", n)
		}
		for key, d := range map[string]Duration{"objectives.rto": t.Objectives.RTO, "objectives.rpo": t.Objectives.RPO,
			"objectives.drillEvery": t.Objectives.DrillEvery, "restore.local.startTimeout": t.Restore.Local.StartTimeout} {
			if d.IsSet() && d.Duration <= 0 {
				add(p+"."+key, "must be greater than zero (leave it out for the default)")
			}
		}
		oneOf(add, p+".restore.runtime", t.Restore.Runtime, supportedRuntimes)
		oneOf(add, p+".restore.local.listen", t.Restore.Local.Listen, supportedListen)
		validateRuntimeDriver(p, t, add)
		validateDocker(p+".restore.docker", t.Restore.Docker, add)
		validateKubernetes(p+".restore.kubernetes", t.Restore.Kubernetes, add)
		if t.Restore.Runtime == "local" {
			validateRunAs(p+".restore.local.runAsUser", t.Restore.Local.RunAsUser, add)
		}
		if t.Restore.Local.BinDir != "" {
			if fi, err := os.Stat(t.Restore.Local.BinDir); err != nil || !fi.IsDir() {
				add(p+".restore.local.binDir", "%s is not a directory", t.Restore.Local.BinDir)
			}
		}
		ch := t.Checks
		if ch.Parallel < 1 || ch.Parallel > 64 {
			add(p+".checks.parallel", "must be between 1 and 64, got %d", ch.Parallel)
		}
		names := map[string]bool{}
		for j, s := range ch.SQL {
			sp := fmt.Sprintf("%s.checks.sql[%d]", p, j)
			if s.Name == "" {
				add(sp+".name", "required: a short name for the assertion")
			} else if names[s.Name] {
				add(sp+".name", "duplicate assertion name %q", s.Name)
			}
			names[s.Name] = true
			if strings.TrimSpace(s.Query) == "" {
				add(sp+".query", "required: a query whose first column of the first row is checked")
			}
			e := s.Expect
			switch {
			case e.Equals == nil && e.Min == nil && e.Max == nil:
				add(sp+".expect", "required: {equals: VALUE}, {min: N}, {max: N} or {min: N, max: M}")
			case e.Equals != nil && (e.Min != nil || e.Max != nil):
				add(sp+".expect", "equals cannot be combined with min or max")
			case e.Min != nil && e.Max != nil && *e.Min > *e.Max:
				add(sp+".expect", "min %v is greater than max %v", *e.Min, *e.Max)
			}
		}
		if f := ch.Freshness; f != nil && strings.TrimSpace(f.Query) == "" {
			add(p+".checks.freshness.query", "required: a query returning the newest timestamp in the data, e.g. SELECT max(created_at) FROM orders")
		}
		if rc := ch.RowCounts; rc != nil {
			for k, v := range rc.Min {
				if v < 0 {
					add(p+".checks.rowCounts.min."+k, "must be zero or more, got %d", v)
				}
				if n := strings.Count(k, "."); n < 1 || n > 2 {
					add(p+".checks.rowCounts.min."+k, "name tables as schema.table or database.schema.table")
				}
			}
		}
	}
	validatePaths(c, add, idx.lineOf)
	validateSnapshotExt(c, add)
	validateAudit(c, add)
	return errs
}

func oneOf(add func(key, format string, a ...any), key, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	add(key, "%q is not supported (supported: %s)", v, strings.Join(allowed, ", "))
}

// DSN returns the target's connection string, reading dsnEnv at call time.
func (t *Target) DSN() (string, error) {
	if t.Connection.DSN != "" {
		return t.Connection.DSN, nil
	}
	key := "targets." + t.Name + ".connection.dsnEnv"
	v, ok := os.LookupEnv(t.Connection.DSNEnv)
	if !ok || v == "" {
		return "", &Error{File: "environment", Key: key,
			Msg: fmt.Sprintf("environment variable %s is not set; export it with the target's DSN", t.Connection.DSNEnv)}
	}
	if err := DSNProblem(t.Engine, v); err != nil {
		return "", &Error{File: "environment", Key: key,
			Msg: fmt.Sprintf("environment variable %s holds a malformed DSN: %s", t.Connection.DSNEnv, err.Error())}
	}
	return v, nil
}
