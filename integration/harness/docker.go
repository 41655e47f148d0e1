package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// PostgresImage is the PostgreSQL image integration/setup/docker.sh builds from Debian's
// postgresql-15 (no image registry is reachable, so no image is ever pulled).
const PostgresImage = "local/postgres:15"

// EnginesImage has Debian's redis-server, mariadb-server and mariadb-backup
// (integration/setup/docker.sh): the docker runtime's Redis and MariaDB drills run in it.
const EnginesImage = "local/engines:bookworm"

const dockerHow = "run 'make setup' as root: it installs docker.io, starts dockerd and builds " + PostgresImage

// Docker is the Docker engine the container tests use.
type Docker struct {
	// Host is the daemon's address, such as unix:///var/run/docker.sock.
	Host string
	// ServerVersion is the engine's version.
	ServerVersion string
}

// testcontainersEnv sets what testcontainers-go needs on this kind of machine, unless the
// environment says otherwise. It must run before testcontainers reads its configuration, which
// it does once per process: so every entry point here calls it first.
var testcontainersEnv = sync.OnceFunc(func() {
	for k, v := range map[string]string{
		// The reaper's image cannot be pulled; t.Cleanup removes what the tests start.
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		// The machine has /.dockerenv, which makes testcontainers look for the daemon's gateway
		// address instead of 127.0.0.1, and every wait strategy time out.
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			os.Setenv(k, v)
		}
	}
})

// RequireDocker returns the reachable Docker engine after checking that the image named by
// each of images exists locally; it calls Missing when the engine or an image is not there.
func RequireDocker(t testing.TB, images ...string) *Docker {
	t.Helper()
	testcontainersEnv()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		Missing(t, "Docker", fmt.Sprintf("no Docker client: %v", err), dockerHow)
	}
	defer cli.Close()
	ping, err := cli.Ping(ctx, client.PingOptions{})
	if err != nil {
		Missing(t, "Docker", fmt.Sprintf("the daemon at %s does not answer: %v", cli.DaemonHost(), err), dockerHow)
	}
	d := &Docker{Host: cli.DaemonHost()}
	if v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		d.ServerVersion = v.Version
	} else {
		d.ServerVersion = "API " + ping.APIVersion
	}
	for _, img := range images {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			Missing(t, "Docker image "+img, fmt.Sprintf("not in the local engine: %v", err), dockerHow)
		}
	}
	return d
}

// PostgresContainer is a PostgreSQL server in a container of PostgresImage, published on
// 127.0.0.1 only and removed by t.Cleanup.
type PostgresContainer struct {
	// DSN is a libpq/pgx URL (sslmode=disable) for User on Database.
	DSN                      string
	Host                     string
	Port                     int
	User, Password, Database string
	// Container is the testcontainers handle, for Exec, Logs, Snapshot/Restore and the like.
	Container *tcpostgres.PostgresContainer
}

// StartPostgresContainer starts a PostgresImage container with testcontainers-go's postgres
// module and returns once it accepts connections (about 2 s). opts go to tcpostgres.Run after
// the harness's own, such as tcpostgres.WithInitScripts or tcpostgres.WithDatabase.
func StartPostgresContainer(t testing.TB, opts ...testcontainers.ContainerCustomizer) *PostgresContainer {
	t.Helper()
	docker := RequireDocker(t, PostgresImage)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	const user, password, database = "firedrill", "firedrill", "firedrill"
	all := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(tclog.TestLogger(t)),
		tcpostgres.WithUsername(user),
		tcpostgres.WithPassword(password),
		tcpostgres.WithDatabase(database),
		tcpostgres.BasicWaitStrategies(),
		// Publish on loopback only: the default binds every address of the machine.
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}},
			}
		}),
	}
	all = append(all, opts...)
	ctr, err := tcpostgres.Run(ctx, PostgresImage, all...)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("while starting a %s container: %v", PostgresImage, err)
	}

	host, err := ctr.Host(ctx)
	if err != nil {
		t.Fatalf("while reading the container's host: %v", err)
	}
	port, err := ctr.MappedPort(ctx, "5432/tcp")
	if err != nil {
		t.Fatalf("while reading the container's published port: %v", err)
	}
	dsn, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		t.Fatalf("while building the container's DSN: %v", err)
	}
	p := &PostgresContainer{
		DSN:       dsn,
		Host:      host,
		Port:      int(port.Num()),
		User:      user,
		Password:  password,
		Database:  database,
		Container: ctr,
	}
	logComponent(t, "postgres-container", PostgresImage,
		"docker "+docker.ServerVersion+", on "+host+":"+strconv.Itoa(p.Port))
	return p
}
