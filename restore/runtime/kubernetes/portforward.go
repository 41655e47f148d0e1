package kubernetes

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// portForward forwards a free local port to the pod's port through the API server (as kubectl
// port-forward does) and returns it with a function that stops the forward.
func portForward(ctx context.Context, c Clients, namespace, pod string, port int) (int, func(), error) {
	if c.Rest == nil {
		return 0, nil, fmt.Errorf("no Kubernetes client configuration to port-forward with")
	}
	transport, upgrader, err := spdy.RoundTripperFor(c.Rest)
	if err != nil {
		return 0, nil, fmt.Errorf("while building the port-forward transport: %w", err)
	}
	u, err := url.Parse(c.Rest.Host)
	if err != nil {
		return 0, nil, fmt.Errorf("while reading the API server's address %q: %w", c.Rest.Host, err)
	}
	u.Path = fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/portforward", u.Path, namespace, pod)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, fmt.Errorf("while preparing the port-forward: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return 0, nil, fmt.Errorf("while port-forwarding: %w", err)
	case <-ctx.Done():
		close(stop)
		return 0, nil, ctx.Err()
	case <-time.After(30 * time.Second):
		close(stop)
		return 0, nil, fmt.Errorf("the port-forward was not ready after 30s")
	}
	ports, err := fw.GetPorts()
	if err != nil {
		close(stop)
		return 0, nil, fmt.Errorf("while reading the forwarded port: %w", err)
	}
	if len(ports) == 0 {
		close(stop)
		return 0, nil, fmt.Errorf("the port-forward forwards no port")
	}
	return int(ports[0].Local), func() { close(stop) }, nil
}
