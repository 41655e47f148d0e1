package mariadb

import (
	"strings"
	"testing"
)

func TestReadDumpHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     DumpHeader
	}{
		{"one database", "-- MariaDB dump 10.19-11.4.5-MariaDB, for debian-linux-gnu (x86_64)\n--\n-- Host: 127.0.0.1    Database: shop\n-- ------\n-- Server version\t10.11.19-MariaDB-log\n\n/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE t (a int);\n",
			DumpHeader{Tool: "MariaDB dump", ServerVersion: "10.11.19-MariaDB-log", Database: "shop"}},
		{"every database", "-- MySQL dump 10.13  Distrib 8.0.36\n--\n-- Host: db    Database: \n-- Server version\t8.0.36\n",
			DumpHeader{Tool: "MySQL dump", ServerVersion: "8.0.36"}},
		{"--skip-comments", "/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE t (a int);\n-- Host: x    Database: late\n", DumpHeader{}},
		{"not SQL", "PGDMP\x00\x01", DumpHeader{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReadDumpHeader(strings.NewReader(tc.in)); got != tc.want {
				t.Errorf("ReadDumpHeader = %+v, want %+v", got, tc.want)
			}
		})
	}
}
