package builtin

import (
	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/engine/mongodb"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/engine/redis"
)

// One line per engine; adding an engine is its package plus a line here.
func init() {
	engine.Register(postgres.Spec())
	engine.Register(mariadb.Spec()) // and its alias mysql
	engine.Register(redis.Spec())
	engine.Register(mongodb.Spec())
}
