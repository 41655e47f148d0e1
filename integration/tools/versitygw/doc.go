// Package versitygw pins the versitygw S3 gateway (Apache-2.0) that firedrill's integration
// tests use as a local S3 endpoint. It is its own module, so versitygw's dependencies never enter
// firedrill's go.mod; the tool directive in go.mod keeps the pin through `go mod tidy`, and
// integration/setup/gotools.sh builds it with `go build github.com/versity/versitygw/cmd/versitygw`.
package versitygw
