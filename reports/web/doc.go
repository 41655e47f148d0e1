// Package web is the HTTP surface of `firedrill serve`: health and readiness probes, the metrics
// endpoint, the status API and the read-only status pages. It holds no domain logic: the daemon
// hands it a StatusSource and its metrics handler, and web only authenticates, renders and serves.
package web
