package mongodb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	enginemongo "github.com/firedrill/firedrill/restore/engine/mongodb"
)

// Drill is MongoDB's entry in the drill pipeline (drill.RegisterEngine).
type Drill struct {
	// Server is mongod's path; empty: found on PATH.
	Server string
}

var _ drill.EngineDrill = Drill{}

// Runtimes implements drill.EngineDrill.
func (Drill) Runtimes() []string { return []string{"local", "docker", "kubernetes"} }

// Image is the docker runtime's default image.
const Image = "mongo:7"

// socketName is the unix socket mongod listens on, in the scratch directory: its only
// listener (the sandbox's network namespace has loopback down, so there is no TCP address to
// bind, and none is wanted).
const socketName = "mongod.sock"

// Start implements drill.EngineDrill: mongod on the copy, standalone, no authentication
// (only inside the runtime's isolation: no network, a uid of its own), a unix socket in the
// scratch directory.
func (d Drill) Start(ctx context.Context, req drill.EngineStart) (drill.Server, []checks.Finding, error) {
	if req.Remote != nil {
		return startRemote(ctx, req)
	}
	if req.Copy == nil || (req.Copy.DataDir == "" && req.Copy.Logical == nil) {
		return nil, nil, fmt.Errorf("%w: MongoDB drills restore local copies of a dbpath (a local snapshot) or mongodump archives", drill.ErrUnsupported)
	}
	if l := req.Copy.Logical; l != nil && l.Format != drill.LogicalMongoArchive {
		return nil, nil, fmt.Errorf("%w: MongoDB drills load mongodump archives, not %s dumps", drill.ErrUsage, l.Format)
	}
	if req.Launch == nil {
		return nil, nil, fmt.Errorf("%w: restore.runtime %s cannot launch mongod", drill.ErrUnsupported, req.Runtime.Kind)
	}
	server := d.Server
	if server == "" {
		p, err := exec.LookPath("mongod")
		if err != nil && req.Runtime.Kind != "docker" {
			return nil, nil, fmt.Errorf("%w: mongod is not installed (MongoDB's server packages, or restore.runtime: docker with a mongo image)", drill.ErrUnsupported)
		}
		if p == "" {
			p = "/usr/bin/mongod" // the image's, found by name
		}
		server = p
	}
	sock := SocketPath(req.ScratchDir)
	if len(sock) > 100 {
		return nil, nil, fmt.Errorf("%w: the throwaway's socket path %s is longer than a unix socket takes: choose a shorter restore.local.scratchDir", drill.ErrUsage, sock)
	}
	dbPath := req.Copy.DataDir
	if req.Copy.Logical != nil {
		p, err := emptyDBPath(req.ScratchDir)
		if err != nil {
			return nil, nil, err
		}
		dbPath = p
	}
	if err := req.RunAs.ChownTree(req.ScratchDir); err != nil {
		return nil, nil, fmt.Errorf("while handing the scratch directory %s to %s: %w", req.ScratchDir, req.RunAs.Name, err)
	}
	version := ""
	if req.Snapshot != nil {
		version = req.Snapshot.Attributes[enginemongo.AttrServerVersion]
	}
	req.Status("starting mongod on the copy")
	proc, err := req.Launch(ctx, drill.LaunchSpec{
		Name: "mongod", Path: server, Args: Args(dbPath, req.ScratchDir), Image: Image,
		EngineVersion: version, Listen: "unix:" + sock,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("while starting mongod on %s: %w", dbPath, err)
	}
	srv := &Server{Process: proc, sock: sock, uri: URI(sock), dbPath: dbPath}
	if req.Copy.Logical == nil {
		return srv, nil, nil
	}
	f, err := srv.load(ctx, req)
	if err != nil || f.Status == checks.Fail {
		_, _ = srv.Stop(10 * time.Second)
		if rerr := srv.Remove(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if err != nil {
			return nil, nil, err
		}
		return nil, []checks.Finding{f}, nil
	}
	return srv, []checks.Finding{f}, nil
}

// Args are mongod's arguments on a copy: standalone (no --replSet: a replica set member's
// copy comes up alone, its set configuration unused), no authentication, bound to a unix
// socket path in the scratch directory only (bindIp takes socket paths; the default socket
// goes to the scratch directory too), no diagnostic data, and nothing read from a
// configuration file.
func Args(dbPath, scratch string) []string {
	return []string{
		"--dbpath", dbPath,
		"--bind_ip", SocketPath(scratch),
		"--unixSocketPrefix", scratch,
		"--filePermissions", "0700",
		"--noauth",
		"--setParameter", "diagnosticDataCollectionEnabled=false",
		"--setParameter", "disableLogicalSessionCacheRefresh=true",
	}
}

// SocketPath is the unix socket mongod listens on.
func SocketPath(scratch string) string {
	return filepath.Join(scratch, socketName)
}

// URI reaches a mongod over its unix socket.
func URI(sock string) string {
	return "mongodb://" + url.PathEscape(sock) + "/?directConnection=true&appName=firedrill-drill"
}

// Server is a throwaway mongod on a copy.
type Server struct {
	drill.Process
	// sock is its unix socket in the scratch directory; empty when it is reached over TCP
	// (reach: a Kubernetes pod), uri once known.
	sock   string
	uri    string
	reach  drill.Reachable
	dbPath string
	client *mongo.Client
}

var _ drill.Server = (*Server)(nil)

func (s *Server) connect() (*mongo.Client, error) {
	if s.client != nil {
		return s.client, nil
	}
	c, err := mongo.Connect(options.Client().ApplyURI(s.uri).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		return nil, err
	}
	s.client = c
	return c, nil
}

// WaitReady waits until mongod answers ping over its socket (after WiredTiger's recovery of
// the copy); a mongod that exits first returns its log's reason.
func (s *Server) WaitReady(ctx context.Context, status func(string)) error {
	if s.reach != nil && s.uri == "" {
		addr, err := s.reach.Addr(ctx, status)
		if err != nil {
			return fmt.Errorf("mongod did not start on the copy: %w", err)
		}
		s.uri = TCPURI(addr)
	}
	for {
		select {
		case <-s.Exited():
			return fmt.Errorf("mongod exited before it accepted connections: %s", lastLine(s.LogEvidence(20)))
		default:
		}
		if _, err := os.Stat(s.sock); s.sock == "" || err == nil {
			c, err := s.connect()
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err = c.Ping(pctx, nil)
				cancel()
				if err == nil {
					return nil
				}
			}
			status("waiting for mongod to accept connections on " + strings.TrimPrefix(s.uri, "mongodb://"))
		} else {
			status("waiting for mongod to recover the copy")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while waiting for mongod: %w", context.Cause(ctx))
		case <-s.Exited():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Recovered implements drill.Server: mongod recovered the copy (its log says why not) and
// answers buildInfo.
func (s *Server) Recovered(ctx context.Context) checks.Finding {
	logLines := s.LogEvidence(30)
	ev := checks.Evidence{"serverLog": logLines}
	c, err := s.connect()
	if err != nil {
		return checks.Errorf(drill.RecoveryName, ev, "recovered, but a connection failed: %v", err)
	}
	var info struct {
		Version string `bson:"version"`
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return checks.Errorf(drill.RecoveryName, ev, "recovered, but buildInfo failed: %v", err)
	}
	ev["serverVersion"] = info.Version
	if bad := recoveryProblem(logLines); bad != "" {
		return checks.Failf(drill.RecoveryName, ev, "mongod reports the copy damaged: %s", bad)
	}
	return checks.Passf(drill.RecoveryName, ev, "mongod %s recovered the copy and accepts connections", info.Version)
}

// recoveryProblem is a log line in which the storage engine reports damage.
func recoveryProblem(lines []string) string {
	for _, l := range lines {
		for _, k := range []string{"WT_PANIC", "checksum error", "DataCorruptionDetected", "Fatal assertion", "WiredTiger error"} {
			if strings.Contains(l, k) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

func lastLine(lines []string) string {
	if bad := recoveryProblem(lines); bad != "" {
		return bad
	}
	if len(lines) == 0 {
		return "no log output"
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// CheckEnv implements drill.Server.
func (s *Server) CheckEnv(env *checks.Env) {
	if c, err := s.connect(); err == nil {
		env.Mongo = c
	}
	env.DataDir = s.dbPath
}

// Stop disconnects, then stops mongod (SIGTERM: a clean shutdown).
func (s *Server) Stop(grace time.Duration) (bool, error) {
	var errs []error
	if s.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.client.Disconnect(ctx))
		cancel()
		s.client = nil
	}
	clean, err := s.Process.Stop(grace)
	return clean, errors.Join(append(errs, err)...)
}

// Kept says how to reach a server left running by --keep.
func (s *Server) Kept() *reports.Kept {
	k := s.Process.Kept()
	k.Connect = "mongosh " + s.uri
	return k
}
