package csidriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// Registrar answers the kubelet's plugin watcher: it serves the pluginregistration v1 service on
// <registryDir>/<driver>-reg.sock, the socket the kubelet discovers, and tells it the driver's
// name and CSI endpoint. It is what upstream's node-driver-registrar sidecar does, which the
// module proxy does not serve; the kubelet then calls NodeGetInfo itself and creates the node's
// CSINode entry.
type Registrar struct {
	registerapi.UnimplementedRegistrationServer

	// Name is the CSI driver name; Endpoint the driver's socket path as the kubelet reaches it.
	Name, Endpoint string

	mu     sync.Mutex
	status *registerapi.RegistrationStatus
}

// GetInfo tells the kubelet what registers: a CSI plugin, its name, endpoint and CSI versions.
func (r *Registrar) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.Name,
		Endpoint:          r.Endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

// NotifyRegistrationStatus records the kubelet's verdict on the registration.
func (r *Registrar) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
	return &registerapi.RegistrationStatusResponse{}, nil
}

// Status is the kubelet's last verdict: registered, and its error when it refused; ok is false
// until the kubelet has answered.
func (r *Registrar) Status() (registered bool, reason string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == nil {
		return false, "", false
	}
	return r.status.PluginRegistered, r.status.Error, true
}

// Serve listens on <registryDir>/<Name>-reg.sock until ctx ends, then removes the socket (the
// kubelet deregisters a plugin whose socket disappears).
func (r *Registrar) Serve(ctx context.Context, registryDir string) error {
	if r.Name == "" || r.Endpoint == "" {
		return errors.New("registrar: a driver name and endpoint are required")
	}
	path := filepath.Join(registryDir, r.Name+"-reg.sock")
	if err := os.MkdirAll(registryDir, 0o755); err != nil {
		return fmt.Errorf("while creating the plugin registry directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("while removing the stale registration socket %s: %w", path, err)
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("while listening on the registration socket %s: %w", path, err)
	}
	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, r)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		srv.GracefulStop()
	}()
	err = srv.Serve(lis)
	<-done
	_ = os.Remove(path)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("while serving plugin registration on %s: %w", path, err)
	}
	return nil
}
