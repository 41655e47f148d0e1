package csidriver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// TestRegistrarAnswersAsTheKubeletExpects plays the kubelet's plugin watcher against the
// registration socket: GetInfo names a CSI plugin with the driver's endpoint, and the verdict sent
// back is recorded.
func TestRegistrarAnswersAsTheKubeletExpects(t *testing.T) {
	dir := t.TempDir()
	r := &Registrar{Name: DefaultName, Endpoint: "/var/lib/kubelet/plugins/x/csi.sock"}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, dir) }()

	sock := filepath.Join(dir, DefaultName+"-reg.sock")
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := registerapi.NewRegistrationClient(conn)
	var info *registerapi.PluginInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		info, err = client.GetInfo(cctx, &registerapi.InfoRequest{})
		ccancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.Type != registerapi.CSIPlugin || info.Name != DefaultName || info.Endpoint != r.Endpoint || len(info.SupportedVersions) == 0 {
		t.Fatalf("GetInfo = %+v", info)
	}
	if _, _, ok := r.Status(); ok {
		t.Fatal("a status before the kubelet answered")
	}
	if _, err := client.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: false, Error: "version mismatch"}); err != nil {
		t.Fatal(err)
	}
	if reg, reason, ok := r.Status(); !ok || reg || reason != "version mismatch" {
		t.Fatalf("Status = %v %q %v", reg, reason, ok)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
