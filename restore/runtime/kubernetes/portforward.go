package kubernetes

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// portForward forwards a free local port to the pod's port through the API server (as kubectl
// port-forward does) and returns it with a function that stops the forward.
//
// A connection the pod refuses (the server still in recovery, not listening yet) makes the
// kubelet close the whole port-forward session, as `kubectl port-forward` exits with "lost
// connection to pod": so the forward is started again on the same local port whenever it ends,
// until stopped. A connection attempt while it restarts is refused locally; the caller's wait
// for the server retries.
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
	f := &forward{dialer: spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u), remote: port, done: make(chan struct{})}
	local, errc, err := f.start(ctx, 0)
	if err != nil {
		return 0, nil, err
	}
	go f.keep(local, errc)
	return local, f.close, nil
}

// forward is one port-forward kept alive across the sessions the kubelet ends.
type forward struct {
	dialer interface {
		Dial(protocols ...string) (httpstream.Connection, string, error)
	}
	remote int

	mu      sync.Mutex
	stop    chan struct{} // the current session's
	done    chan struct{} // closed by close
	closing sync.Once
}

// start opens one session forwarding local (0: a free port) and returns the port and the channel
// that receives the session's end.
func (f *forward) start(ctx context.Context, local int) (int, chan error, error) {
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(f.dialer, []string{"127.0.0.1"}, []string{strconv.Itoa(local) + ":" + strconv.Itoa(f.remote)}, stop, ready, io.Discard, io.Discard)
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
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done: // closed while this session started: it must not outlive close
		close(stop)
		return 0, nil, fmt.Errorf("the port-forward was stopped")
	default:
	}
	f.stop = stop
	return int(ports[0].Local), errc, nil
}

// keep starts the session again on the same local port each time it ends, until close.
func (f *forward) keep(local int, errc chan error) {
	for {
		select {
		case <-f.done:
			return
		case <-errc:
		}
		for {
			select {
			case <-f.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, next, err := f.start(ctx, local)
			cancel()
			if err == nil {
				errc = next
				break
			}
		}
	}
}

func (f *forward) close() {
	f.closing.Do(func() {
		close(f.done)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.stop != nil {
			close(f.stop)
			f.stop = nil
		}
	})
}
