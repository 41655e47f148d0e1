package walarchive

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3API is the part of an S3 client an archive under a prefix needs: listing it and reading
// one object.
type S3API interface {
	s3.ListObjectsV2APIClient
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// ListS3 lists a WAL archive under an S3 prefix (where names it in messages, without
// credentials): the names and sizes only, nothing is downloaded. Files are read, when the plan
// needs them, with GetObject under ctx. segBytes 0 infers the segment size from the objects.
// Only the prefix's top level counts, as in a directory: archive_command writes no
// subdirectories.
func ListS3(ctx context.Context, api S3API, bucket, prefix, where string, segBytes int64) (*Listing, error) {
	var files []File
	sizes := map[int64]int{}
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("while listing WAL archive %s: %w", where, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if name == "" || strings.Contains(name, "/") {
				continue
			}
			f := File{Name: name, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				f.ModTime = *o.LastModified
			}
			files = append(files, f)
			if n, ok := ParseName(name, DefaultSegmentBytes); ok && n.Kind == KindSegment && n.Compression == "" {
				sizes[f.Size]++
			}
		}
	}
	if segBytes == 0 {
		segBytes = inferSegmentBytes(sizes)
	}
	open := func(f File) (io.ReadCloser, error) {
		out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + f.Name)})
		if err != nil {
			return nil, fmt.Errorf("while reading %s of WAL archive %s: %w", f.Name, where, err)
		}
		return decompress(path.Base(f.Name), segBytes, out.Body)
	}
	return NewListing(where, segBytes, files, open), nil
}
