package ec2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mapflow/mapflow/runtime/remote"
)

// Store is a remote.Store under an S3 prefix: a job's staging directory. Objects are written
// without an ACL, so they stay private to the bucket's owner.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // no slash at either end; "" is the bucket's root
}

var _ remote.Store = (*Store)(nil)

// NewStore returns the Store of prefix in bucket.
func NewStore(client *s3.Client, bucket, prefix string) *Store {
	return &Store{client: client, bucket: bucket, prefix: strings.Trim(prefix, "/")}
}

// URL is the store's address as `mapflow worker --store` takes it: s3://bucket/prefix, with
// the region and any endpoint as query parameters.
func (s *Store) URL(region, endpoint string) string {
	q := url.Values{}
	q.Set("region", region)
	if endpoint != "" {
		q.Set("endpoint", endpoint)
	}
	return "s3://" + s.bucket + "/" + s.prefix + "?" + q.Encode()
}

// OpenStore opens the store a worker is pointed at: s3://bucket/prefix[?region=R&endpoint=URL].
// Credentials come from the SDK's default chain (on an EC2 host, its instance profile); the
// region and endpoint from the query, else the chain and AWS_ENDPOINT_URL(_S3). An endpoint
// makes S3 addressed path-style.
func OpenStore(ctx context.Context, raw string) (*Store, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" {
		return nil, fmt.Errorf("store %q: want s3://bucket/prefix", raw)
	}
	bucket, prefix, err := ParseS3Path("s3://" + u.Host + u.Path)
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", raw, err)
	}
	q := u.Query()
	c, err := connect(ctx, q.Get("region"), q.Get("endpoint"))
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", raw, err)
	}
	return NewStore(c.s3, bucket, prefix), nil
}

func (s *Store) key(name string) string {
	name = path.Clean("/" + name)[1:]
	if s.prefix == "" {
		return name
	}
	if name == "" {
		return s.prefix
	}
	return s.prefix + "/" + name
}

// Put writes name; S3 makes a PUT visible whole or not at all.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.key(name)),
		Body:          bytes.NewReader(data), // seekable: the SDK rewinds it to sign and retry
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, s.key(name), err)
	}
	return nil
}

// Create writes name with If-None-Match: *, which S3 refuses (412 PreconditionFailed) when
// the key exists: of several workers creating one claim, exactly one succeeds. A 409
// ConditionalRequestConflict (a concurrent write of the key still in progress) is retried:
// its outcome is then a success or a 412.
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	for attempt := 0; ; attempt++ {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(s.key(name)),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
			IfNoneMatch:   aws.String("*"),
		})
		if err == nil {
			return nil
		}
		if apiCode(err) == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed {
			return fmt.Errorf("create %s: %w", name, remote.ErrExist)
		}
		if (apiCode(err) == "ConditionalRequestConflict" || httpStatus(err) == http.StatusConflict) && attempt < 5 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
			}
			continue
		}
		return fmt.Errorf("create s3://%s/%s: %w", s.bucket, s.key(name), err)
	}
}

// Get reads name.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || httpStatus(err) == http.StatusNotFound {
			return nil, fmt.Errorf("get %s: %w", name, remote.ErrNotExist)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, s.key(name), err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, s.key(name), err)
	}
	return data, nil
}

// List lists the objects directly under dir, with a delimiter so that deeper keys are
// skipped on S3's side.
func (s *Store) List(ctx context.Context, dir, after string) ([]string, error) {
	prefix := s.key(dir)
	if prefix != "" {
		prefix += "/"
	}
	var names []string
	in := &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(prefix),
		Delimiter: aws.String("/"),
	}
	if after != "" {
		in.StartAfter = aws.String(prefix + after) // S3 pages from there: a LIST costs what it returns
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			if name := strings.TrimPrefix(aws.ToString(o.Key), prefix); name != "" && !strings.Contains(name, "/") {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// uploadFile copies a local file to s3://bucket/key, unless an object of that key and size
// is there already (the key names the file's content).
func uploadFile(ctx context.Context, client *s3.Client, bucket, key, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil && aws.ToInt64(head.ContentLength) == info.Size() {
		return nil
	}
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          f, // an *os.File is seekable, as plain-HTTP endpoints need
		ContentLength: aws.Int64(info.Size()),
	})
	if err != nil {
		return fmt.Errorf("upload %s to s3://%s/%s: %w", file, bucket, key, err)
	}
	return nil
}
