package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports/progress"
	"github.com/firedrill/firedrill/reports/render"
)

// globals are the flags every command takes, and what main hands in.
type globals struct {
	configPath string
	output     string
	logLevel   string
	stdout     io.Writer
	stderr     io.Writer
	// tty is true when stderr is a terminal: progress is shown there.
	tty bool
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func (g *globals) format() (render.Format, error) {
	f, err := render.ParseFormat(g.output)
	if err != nil {
		return "", usageError{err}
	}
	return f, nil
}

func (g *globals) loadConfig() (*policy.Config, error) {
	return policy.Load(g.configPath)
}

// open is how every command that reads the configuration starts: the output format, the
// configuration and the logger, each a usage or configuration error when wrong.
func (g *globals) open() (render.Format, *policy.Config, *slog.Logger, error) {
	f, err := g.format()
	if err != nil {
		return "", nil, nil, err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return "", nil, nil, err
	}
	log, err := g.logger()
	if err != nil {
		return "", nil, nil, err
	}
	return f, cfg, log, nil
}

// logger logs to stderr: text on a terminal, JSON elsewhere; warn and above unless asked.
func (g *globals) logger() (*slog.Logger, error) {
	lvl := slog.LevelWarn
	if g.logLevel != "" {
		if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
			return nil, usageError{fmt.Errorf("invalid --log-level %q (use debug, info, warn or error)", g.logLevel)}
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if g.tty {
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
}

// progress shows phases on a terminal (unless the output is JSON on a terminal... it goes to
// stderr, so it never mixes with stdout) and logs them otherwise.
func (g *globals) progress(log *slog.Logger) progress.Reporter {
	return progress.New(g.stderr, g.tty, log)
}

// pickTargets returns the named target, or every target when name is empty.
func pickTargets(cfg *policy.Config, name string) ([]policy.Target, error) {
	if name == "" {
		return cfg.Targets, nil
	}
	t, ok := cfg.Target(name)
	if !ok {
		return nil, usageError{fmt.Errorf("no target %q in %s (targets: %s)", name, cfg.File, strings.Join(cfg.TargetNames(), ", "))}
	}
	return []policy.Target{*t}, nil
}
