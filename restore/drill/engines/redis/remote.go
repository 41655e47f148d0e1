package redis

import (
	"context"
	"fmt"
	"path"
	"strconv"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
)

// imageBin is where the official image keeps Redis's binaries; a runtime without firedrill's
// filesystem runs them by name from its image's PATH, so only the name matters there.
const imageBin = "/usr/local/bin"

// startRemote drills a copy only the runtime's processes see (a Kubernetes pod's scratch PVC):
// redis-check-rdb runs through the runtime where the server will, then redis-server starts
// there on TCP (the runtime's Bind:Port; firedrill reaches it through Reachable.Addr). The
// copy is the RDB the snapshot's BGSAVE wrote (its rdbFile, default dump.rdb) in the
// runtime's data directory: an AOF-only volume is not drilled this way.
func startRemote(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	if req.Run == nil || req.Launch == nil {
		return nil, nil, fmt.Errorf("%w: restore.runtime %s cannot run Redis's tools", drill.ErrUnsupported, req.Runtime.Kind)
	}
	var attrs map[string]string
	if req.Snapshot != nil {
		attrs = req.Snapshot.Attributes
	}
	rdb := attrs[enginered.AttrRDBFile]
	if rdb == "" {
		rdb = defaultRDB
	}
	data := dataFiles{dir: req.Remote.DataDir, rdb: rdb}
	image := defaultImage(attrs[enginered.AttrServerVersion])

	req.Status("checking the copy with " + CheckRDBName)
	fc, err := checkFiles(ctx, data, req.RunAs, func(ctx context.Context, tool string, args ...string) ([]byte, int, error) {
		return req.Run(ctx, drill.LaunchSpec{Name: CheckRDBName, Path: tool, Args: args, Image: image})
	})
	if err != nil {
		return nil, nil, err
	}
	findings := []checks.Finding{fc.finding}
	if fc.finding.Status == checks.Fail {
		return nil, findings, nil
	}

	protected := "yes"
	if req.Remote.Bind != "127.0.0.1" {
		// Reached on the pod's IP: protected mode would refuse the runner (no password); the
		// runtime's network policy admits only it.
		protected = "no"
	}
	server := path.Join(imageBin, "redis-server")
	args := []string{
		"--port", strconv.Itoa(req.Remote.Port),
		"--bind", req.Remote.Bind,
		"--dir", data.dir,
		"--dbfilename", data.rdb, "--appendonly", "no",
		"--save", "",
		"--protected-mode", protected,
		"--daemonize", "no",
		"--logfile", "", // stdout: the pod's log
	}
	req.Status("starting redis-server on the copy")
	proc, err := req.Launch(ctx, drill.LaunchSpec{Name: "redis-server", Path: server, Args: args, Image: image,
		Listen: fmt.Sprintf("tcp:%s:%d (where it runs)", req.Remote.Bind, req.Remote.Port)})
	if err != nil {
		return nil, findings, fmt.Errorf("while starting redis-server on %s: %w", data.dir, err)
	}
	reach, ok := proc.(drill.Reachable)
	if !ok {
		_ = proc.Remove()
		return nil, findings, fmt.Errorf("%w: restore.runtime %s runs redis-server where firedrill cannot reach it", drill.ErrUnsupported, req.Runtime.Kind)
	}
	srv := newServer(proc, "", server, data, fc, req.Snapshot)
	srv.reach = reach
	return srv, findings, nil
}
