package mariadb

import (
	"strings"
	"testing"
)

// The init file a pod reads holds MySQL's PASSWORD() hash, never the password.
func TestRemoteInitSQL(t *testing.T) {
	if got := nativeHash("password"); got != "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19" {
		t.Errorf("nativeHash(password) = %s, want MySQL's PASSWORD('password')", got)
	}
	sql := remoteInitSQL("127.0.0.1", "s3cret-pw")
	if strings.Contains(sql, "s3cret-pw") || !strings.Contains(sql, "IDENTIFIED BY PASSWORD '"+nativeHash("s3cret-pw")+"'") ||
		!strings.Contains(sql, "'"+drillUser+"'@'127.0.0.1'") {
		t.Errorf("init SQL %q", sql)
	}
}
