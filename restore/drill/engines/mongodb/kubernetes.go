package mongodb

import (
	"context"
	"fmt"
	"strconv"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemongo "github.com/firedrill/firedrill/restore/engine/mongodb"
)

// RemoteArgs are mongod's arguments on a copy only the runtime's processes see (a Kubernetes
// pod's scratch PVC): standalone, no authentication (only inside the runtime's isolation: the
// pod's deny-egress network policy admits nothing but the runner), on TCP at bind:port (the
// pod's loopback for a port-forward, its IP otherwise), its socket and diagnostics in the
// pod's /tmp, nothing read from a configuration file.
func RemoteArgs(dbPath, bind string, port int) []string {
	return []string{
		"--dbpath", dbPath,
		"--bind_ip", bind,
		"--port", strconv.Itoa(port),
		"--unixSocketPrefix", "/tmp",
		"--noauth",
		"--setParameter", "diagnosticDataCollectionEnabled=false",
		"--setParameter", "disableLogicalSessionCacheRefresh=true",
	}
}

// TCPURI reaches a mongod at host:port, directly (a replica set member's copy is alone).
func TCPURI(addr string) string {
	return "mongodb://" + addr + "/?directConnection=true&appName=firedrill-drill"
}

// startRemote starts mongod on a CSI snapshot's dbpath in a pod of the runtime's (fsyncLock
// made the cut consistent; WiredTiger's recovery is the restore), reached over TCP once the
// runtime says where.
func startRemote(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	if req.Launch == nil {
		return nil, nil, fmt.Errorf("%w: restore.runtime %s cannot launch mongod", drill.ErrUnsupported, req.Runtime.Kind)
	}
	if req.Copy != nil && req.Copy.Logical != nil {
		return nil, nil, fmt.Errorf("%w: mongodump archives are drilled on restore.runtime local or docker", drill.ErrUnsupported)
	}
	rm := req.Remote
	version := ""
	if req.Snapshot != nil {
		version = req.Snapshot.Attributes[enginemongo.AttrServerVersion]
	}
	req.Status("starting mongod on the copy")
	proc, err := req.Launch(ctx, drill.LaunchSpec{
		Name: "mongod", Path: "/usr/bin/mongod", Args: RemoteArgs(rm.DataDir, rm.Bind, rm.Port), Image: Image,
		EngineVersion: version, Listen: fmt.Sprintf("tcp:%s:%d (where it runs)", rm.Bind, rm.Port),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("while starting mongod on %s: %w", rm.DataDir, err)
	}
	reach, ok := proc.(drill.Reachable)
	if !ok {
		_ = proc.Remove()
		return nil, nil, fmt.Errorf("%w: restore.runtime %s runs mongod where firedrill cannot reach it", drill.ErrUnsupported, req.Runtime.Kind)
	}
	return &Server{Process: proc, reach: reach, dbPath: rm.DataDir}, nil, nil
}
