package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/restore/drill"
)

func TestGCFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want gcOptions
	}{
		{"defaults: any age, kept left, for real", nil, gcOptions{}},
		{"a CronJob's", []string{"--older-than", "2h"}, gcOptions{GCOptions: drill.GCOptions{OlderThan: 2 * time.Hour}}},
		{"everything, dry run", []string{"--target", "orders", "--include-kept", "--dry-run", "--older-than=90m"},
			gcOptions{target: "orders", GCOptions: drill.GCOptions{IncludeKept: true, DryRun: true, OlderThan: 90 * time.Minute}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got gcOptions
			cmd := &cobra.Command{}
			bindGCFlags(cmd, &got)
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("options %+v, want %+v", got, tt.want)
			}
			if err := got.validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

// A bad --older-than is a usage error (exit 2) before any config is read.
func TestGCFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"gc", "--older-than", "two hours"},
		{"gc", "--older-than", "-1h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append(args, "--config", "/nonexistent/firedrill.yaml"), nil, &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), "older-than") {
				t.Errorf("exit %d, stderr %q; want %d naming --older-than", code, errb.String(), exitUsage)
			}
		})
	}
}

func TestGCHelpSaysWhyOlderThan(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"gc", "--help"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"--dry-run", "--older-than", "no lock", "--older-than 2h", "--include-kept"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gc --help lacks %q", want)
		}
	}
}
