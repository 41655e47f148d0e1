// Package local is the directory snapshot driver: each target has a repository directory, each
// snapshot a folder in it holding a copy of the data directory, the files the engine returned
// (backup_label, tablespace_map), a SHA-256 manifest, and its metadata, written last and
// atomically. A file copy is not atomic, so this driver serves only engines whose files are
// consistent when copied file by file while frozen (PostgreSQL online mode, ...).
//
// Copies are copy-on-write clones (FICLONE) where the filesystem supports them, else parallel
// byte copies hashed on the way.
package local
