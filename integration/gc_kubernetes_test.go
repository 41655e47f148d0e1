package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// gcKubeJSON is the part of 'firedrill gc -o json' this test reads.
type gcKubeJSON struct {
	Leftovers []leftoverJSON `json:"leftovers"`
	Objects   []struct {
		Runtime string `json:"runtime"`
		Target  string `json:"target"`
		Object  string `json:"object"`
		Action  string `json:"action"`
	} `json:"objects"`
	DryRun bool `json:"dryRun"`
}

// objects lists gc's objects as "Kind name" (the namespace dropped) with their action.
func (g gcKubeJSON) objects() map[string]string {
	out := map[string]string{}
	for _, o := range g.Objects {
		kind, name, _ := strings.Cut(o.Object, " ")
		if i := strings.LastIndex(name, "/"); i >= 0 {
			name = name[i+1:]
		}
		out[kind+" "+name] = o.Action
	}
	return out
}

// 'firedrill gc' removes a kept Kubernetes drill's objects, by label, under exactly the
// shipped RBAC: only with --include-kept (a kept drill's scratch PVC and snapshot copy carry
// no kept label, but go with their drill), not when they are younger than --older-than, and
// a dry run lists them and deletes nothing.
func TestGCKubernetesKeptDrill(t *testing.T) {
	d := startKubeDrill(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	scratch, cluster, source, diag := shippedDrillRBAC(t)
	kc := d.serviceAccount(t, "drill", scratch, cluster, source, diag)
	cfg := d.config(t, kc, "")

	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json", "--keep")
	if res := parseKube(t, r); r.code != 0 || res.Status != "pass" {
		t.Fatalf("kept drill: exit %d status %s error %q\nstderr: %s", r.code, res.Status, res.Error, r.stderr)
	}
	kept := d.leftInCluster(t)
	// The throwaway's pod, ConfigMap and NetworkPolicy, the scratch PVC, its VolumeSnapshot and
	// the Retain content copy.
	for _, kind := range []string{"pod ", "configmap ", "networkpolicy ", "pvc ", "volumesnapshot ", "volumesnapshotcontent "} {
		if !slices.ContainsFunc(kept, func(s string) bool { return strings.HasPrefix(s, kind) }) {
			t.Fatalf("the kept drill left %v: no %s", kept, strings.TrimSpace(kind))
		}
	}
	gc := func(args ...string) (gcKubeJSON, cliResult) {
		t.Helper()
		r := runCLI(t, ctx, append([]string{"gc", "--config", cfg, "--output", "json"}, args...)...)
		return decode[gcKubeJSON](t, r), r
	}

	// A dry run without --include-kept: the kept drill is not even listed, not one object of it
	// (its PVC has no kept label, yet is the kept drill's).
	g, r := gc("--dry-run")
	if r.code != 0 || !g.DryRun || len(g.Objects) != 0 {
		t.Errorf("gc --dry-run: exit %d, objects %v, want none\nstderr: %s", r.code, g.Objects, r.stderr)
	}
	// With --include-kept, it lists every one of them as would-remove, and deletes nothing.
	g, r = gc("--dry-run", "--include-kept")
	listed := g.objects()
	if r.code != 0 || len(listed) != len(kept) {
		t.Errorf("gc --dry-run --include-kept: exit %d, objects %v, want the kept drill's %v\nstderr: %s", r.code, g.Objects, kept, r.stderr)
	}
	for _, o := range g.Objects {
		if o.Runtime != "kubernetes" || o.Target != "orders" || o.Action != "would-remove" {
			t.Errorf("dry run object %+v, want kubernetes/orders/would-remove", o)
		}
	}
	for _, lo := range g.Leftovers {
		if lo.Action == "removed" {
			t.Errorf("a dry run removed %+v", lo)
		}
	}
	if now := d.leftInCluster(t); !slices.Equal(now, kept) {
		t.Errorf("after the dry runs the cluster holds %v, want still %v", now, kept)
	}

	// Too young for --older-than 1h: nothing goes.
	g, r = gc("--include-kept", "--older-than", "1h")
	if r.code != 0 || len(g.Objects) != 0 {
		t.Errorf("gc --include-kept --older-than 1h: exit %d, objects %v, want none\nstderr: %s", r.code, g.Objects, r.stderr)
	}
	if now := d.leftInCluster(t); !slices.Equal(now, kept) {
		t.Errorf("after gc --older-than 1h the cluster holds %v, want still %v", now, kept)
	}

	// Then everything of it goes, and gc says so.
	g, r = gc("--include-kept")
	if r.code != 0 || len(g.objects()) != len(kept) {
		t.Errorf("gc --include-kept: exit %d, objects %v, want the kept drill's %v\nstderr: %s", r.code, g.Objects, kept, r.stderr)
	}
	for _, o := range g.Objects {
		if o.Action != "removed" {
			t.Errorf("object %+v, want removed", o)
		}
	}
	if left := d.leftInCluster(t); len(left) != 0 {
		t.Errorf("left in the cluster after gc --include-kept: %v", left)
	}

	// The table says it too: nothing left to remove.
	r = runCLI(t, ctx, "gc", "--config", cfg, "--include-kept")
	if r.code != 0 || strings.Contains(r.stdout, "RUNTIME") {
		t.Errorf("gc table after everything went: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
