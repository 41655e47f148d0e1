// Package mongodb is MongoDB's entry in the drill pipeline: a throwaway mongod on the copy of
// a dbpath (a local fsyncLock snapshot), standalone (the replica set configuration is not
// passed), listening on a unix socket in the scratch directory, checked with
// validate({full: true}), document counts and count assertions (package checks).
package mongodb
