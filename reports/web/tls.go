package web

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSConfig returns a server TLS configuration that serves the certificate in certFile and
// keyFile, and loads it again when either file changes (cert-manager and similar renew them in
// place), so a renewal needs no restart. The files are stat'ed on each handshake; a renewal
// caught half-written keeps serving the previous certificate until both files parse again.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	c := &certCache{certFile: certFile, keyFile: keyFile}
	if _, err := c.get(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.get()
		},
	}, nil
}

type certCache struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	version fileVersion // of the files cert was loaded from
}

// fileVersion tells a changed file by its modification time and size.
type fileVersion struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func (c *certCache) get() (*tls.Certificate, error) {
	v, err := c.stat()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // gone for a moment while being replaced: keep the one we have
		}
		return nil, err
	}
	if c.cert != nil && v == c.version {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("while loading the TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.version = &cert, v
	return c.cert, nil
}

func (c *certCache) stat() (fileVersion, error) {
	cs, err := os.Stat(c.certFile)
	if err != nil {
		return fileVersion{}, fmt.Errorf("while reading the TLS certificate: %w", err)
	}
	ks, err := os.Stat(c.keyFile)
	if err != nil {
		return fileVersion{}, fmt.Errorf("while reading the TLS key: %w", err)
	}
	return fileVersion{certMod: cs.ModTime(), keyMod: ks.ModTime(), certSize: cs.Size(), keySize: ks.Size()}, nil
}
