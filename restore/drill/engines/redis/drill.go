package redis

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
)

// Drill is Redis's entry in the drill pipeline (drill.RegisterEngine).
type Drill struct{}

var _ drill.EngineDrill = Drill{}

// Runtimes implements drill.EngineDrill: a local process, a container (the runtime finds
// redis-server on the image's PATH), or a pod on the scratch PVC of a CSI snapshot.
func (Drill) Runtimes() []string { return []string{"local", "docker", "kubernetes"} }

// defaultImage is the container image of a snapshot's Redis: the official image of its
// major.minor version (which loads the RDB versions that version writes), else redis:7.
func defaultImage(serverVersion string) string {
	parts := strings.SplitN(serverVersion, ".", 3)
	if len(parts) >= 2 && parts[0] != "" && parts[1] != "" {
		return "redis:" + parts[0] + "." + parts[1]
	}
	return "redis:7"
}

// socketName is the throwaway's unix socket in the scratch directory.
const socketName = "redis.sock"

// maxSocketPath is the longest unix socket path Linux takes (sun_path less its NUL).
const maxSocketPath = 107

// Start implements drill.EngineDrill: check the copy's RDB (or AOF) with Redis's own checker,
// then start redis-server on it. The server gets no configuration file of production's and no
// replicaof: it is a master of its own, saves nothing (--save "", no AOF unless it loads one),
// and listens on a unix socket in the scratch directory only (no TCP port): it needs no
// network, so restore.local.isolateNetwork can stay on for it.
func (Drill) Start(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	if req.Remote != nil {
		return startRemote(ctx, req)
	}
	if req.Copy == nil || req.Copy.DataDir == "" {
		return nil, nil, fmt.Errorf("%w: redis drills restore local copies (a local snapshot repository)", drill.ErrUnsupported)
	}
	var attrs map[string]string
	if req.Snapshot != nil {
		attrs = req.Snapshot.Attributes
	}
	rdbFile := attrs[enginered.AttrRDBFile]
	data, err := findData(req.Copy.DataDir, rdbFile)
	if err != nil {
		return nil, []checks.Finding{checks.Failf(CheckRDBName, checks.Evidence{"dir": req.Copy.DataDir, "rdbFile": rdbFile}, "%v", err)}, nil
	}
	// The copy was made as firedrill's user; the checker and the server run as the scratch
	// directory's owner, and must reach the copy through the directories above it.
	if err := req.RunAs.ChownTree(req.ScratchDir); err != nil {
		return nil, nil, fmt.Errorf("while handing the scratch directory %s to %s: %w", req.ScratchDir, req.RunAs.Name, err)
	}
	if data.rdb != "" {
		req.Status("checking the copy with " + CheckRDBName)
	} else {
		req.Status("checking the copy with " + CheckAOFName)
	}
	local := req.Runtime.Kind == "" || req.Runtime.Kind == "local"
	var run toolRunner
	if !local && req.Run != nil {
		// In a container made like the server's (the image's tools, the drill's uid, no
		// network): the host needs no Redis tools, and the file is read as the server will.
		image := defaultImage(attrs[enginered.AttrServerVersion])
		run = func(ctx context.Context, tool string, args ...string) ([]byte, int, error) {
			return req.Run(ctx, drill.LaunchSpec{Name: filepath.Base(tool), Path: tool, Args: args, Image: image})
		}
	}
	fc, err := checkFiles(ctx, data, req.RunAs, run)
	if err != nil {
		return nil, nil, err
	}
	findings := []checks.Finding{fc.finding}
	if fc.finding.Status == checks.Fail {
		return nil, findings, nil
	}
	server, err := findTool("redis-server")
	switch {
	case err != nil && local:
		return nil, findings, err
	case err != nil:
		server = "/usr/local/bin/redis-server" // the official image's; a container runs it by name
	}
	sock := filepath.Join(req.ScratchDir, socketName)
	if len(sock) > maxSocketPath {
		return nil, findings, fmt.Errorf("%w: the throwaway's socket path %s is longer than the %d bytes a unix socket takes: choose a shorter restore.local.scratchDir", drill.ErrUsage, sock, maxSocketPath)
	}
	args := []string{
		"--port", "0",
		"--unixsocket", sock, "--unixsocketperm", "700",
		"--dir", data.dir,
		"--save", "",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--logfile", "", // stdout: the daemon's log file
	}
	if data.rdb != "" {
		args = append(args, "--dbfilename", data.rdb, "--appendonly", "no")
	} else {
		// Redis loads an AOF only with appendonly on (and then writes to it: it is a copy).
		args = append(args, "--appendonly", "yes", "--appenddirname", aofDir, "--appendfilename", aofFile)
	}
	if req.Launch == nil {
		return nil, findings, fmt.Errorf("%w: restore.runtime %s cannot launch redis-server", drill.ErrUnsupported, req.Runtime.Kind)
	}
	req.Status("starting redis-server on the copy")
	spec := drill.LaunchSpec{Name: "redis-server", Path: server, Args: args, Listen: "unix:" + sock}
	if local {
		spec.EngineVersion = serverVersion(ctx, server)
	} else {
		spec.Image = defaultImage(attrs[enginered.AttrServerVersion])
	}
	proc, err := req.Launch(ctx, spec)
	if err != nil {
		return nil, findings, fmt.Errorf("while starting redis-server on %s: %w", data.dir, err)
	}
	return newServer(proc, sock, server, data, fc, req.Snapshot), findings, nil
}

// serverVersion is the binary's version ("Redis server v=7.0.15 sha=..."); empty when it
// cannot tell.
func serverVersion(ctx context.Context, server string) string {
	out, err := exec.CommandContext(ctx, server, "--version").Output()
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return ""
}
