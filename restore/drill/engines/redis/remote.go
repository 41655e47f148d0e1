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
	target := path.Join(data.dir, data.rdb)

	req.Status("checking the copy with " + CheckRDBName)
	tool := path.Join(imageBin, CheckRDBName)
	out, code, err := req.Run(ctx, drill.LaunchSpec{Name: CheckRDBName, Path: tool, Args: []string{target}, Image: image})
	switch {
	case code < 0:
		return nil, nil, fmt.Errorf("while running %s on %s: %w", CheckRDBName, target, err)
	case code == 126 || code == 127:
		// The shell that runs the tool could not find or execute it: the image, not the copy.
		return nil, nil, fmt.Errorf("%w: %s could not be run in the runtime's image (exit %d: %s): set the image to one with Redis's tools", drill.ErrPlatform, CheckRDBName, code, toolError(outputLines(out)))
	}
	fc := judgeFiles(CheckRDBName, target, tool, true, out, code)
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
