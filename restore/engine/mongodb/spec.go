package mongodb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/firedrill/firedrill/restore/engine"
)

// Spec is MongoDB's registry entry.
func Spec() engine.Spec {
	return engine.Spec{
		Name:     "mongodb",
		Document: true,
		Modes:    []string{"online", "crash-consistent"},
		ModeHelp: "use online or crash-consistent",
		Drivers: map[string][]string{
			"local": {"online"},
			"csi":   {"online", "crash-consistent"},
		},
		ParseDSN: parseDSN,
		Open:     open,
	}
}

func parseDSN(dsn string) error {
	if strings.HasPrefix(dsn, "mongodb+srv://") {
		return nil // parsing it looks the SRV record up: not at load time
	}
	_, err := connstring.Parse(dsn)
	return err
}

func open(ctx context.Context, o engine.OpenRequest) (*engine.Opened, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(o.DSN).SetAppName("firedrill-snapshot"))
	if err != nil {
		return nil, engine.Malformed(o.Target)
	}
	mf := New(client.Database("admin"), Options{CrashConsistent: o.Mode == "crash-consistent", Now: o.Now})
	f := engine.WithClose(mf, func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return client.Disconnect(cctx)
	})
	info, err := mf.ServerInfo(ctx)
	if err != nil {
		return nil, engine.CloseAfter(ctx, f, fmt.Errorf("%w: while connecting to target %s: %w", engine.ErrUnreachable, o.Target, err))
	}
	// Under fsyncLock every file is quiescent; the lock file and diagnostics are not data.
	rule := func(rel string, isDir bool) engine.CopyAction {
		switch rel {
		case "mongod.lock":
			return engine.Skip
		case "diagnostic.data":
			return engine.SkipContents
		}
		return engine.Copy
	}
	return &engine.Opened{Freezer: f, Info: info, Rule: rule}, nil
}
