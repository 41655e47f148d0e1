// Package s3objects reads backups kept as objects under an S3 prefix (the dump and files
// sources): listing the prefix, and downloading an object into scratch while hashing it and
// comparing the SHA-256 with every claim the store makes for it. Failures to reach or read
// the bucket are drill.ErrPlatform (the drill could not check: exit 3).
package s3objects
