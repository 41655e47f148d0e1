package builtin

import (
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/drill/engines/mariadb"
	"github.com/firedrill/firedrill/restore/drill/engines/mongodb"
	"github.com/firedrill/firedrill/restore/drill/engines/redis"
)

// One line per engine; adding an engine drill is its package plus a line here.
func init() {
	drill.RegisterEngine("mariadb", &mariadb.Engine{})
	drill.RegisterEngine("mongodb", mongodb.Drill{})
	drill.RegisterEngine("redis", redis.Drill{})
}
