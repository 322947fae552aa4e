package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/callcaptions/bridge/recorder"
)

// bucket is the bucket of --s3-bucket, where the bridges keep ended calls
// (README, "Recordings in S3"): the simulator reads each call's WAVs there
// instead of through a bridge.
type bucket struct {
	client *s3.Client
	name   string
	prefix string // --s3-prefix, put as it is before "calls/"
}

// key is the object key of a call's file: the call's folder name, as on
// disk, under <prefix>calls/.
func (b *bucket) key(callID, file string) string {
	return b.prefix + "calls/" + recorder.FolderName(callID) + "/" + file
}

// String names the bucket and prefix the calls are read from.
func (b *bucket) String() string { return "s3://" + b.name + "/" + b.prefix }

// check asks the bucket whether it is there and readable with the
// credentials given, so that a run does not play its calls for nothing.
func (b *bucket) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b.name}); err != nil {
		return fmt.Errorf("bucket %s: %w", b.name, err)
	}
	return nil
}

// get returns an object's bytes; ok is false when there is no such
// object.
func (b *bucket) get(ctx context.Context, key string) (body []byte, ok bool, err error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.name, Key: &key})
	if err != nil {
		var api smithy.APIError
		var resp interface{ HTTPStatusCode() int }
		if (errors.As(err, &api) && api.ErrorCode() == "NoSuchKey") || (errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	body, err = io.ReadAll(out.Body)
	if err != nil {
		return nil, false, fmt.Errorf("get %s: %w", key, err)
	}
	return body, true, nil
}

// uploaded waits, for at most within, until the call is in the bucket:
// its call.json is there, which the bridge uploads after the call's other
// files.
func (b *bucket) uploaded(ctx context.Context, callID string, within time.Duration) error {
	key := b.key(callID, "call.json")
	deadline := time.Now().Add(within)
	for {
		_, ok, err := b.get(ctx, key)
		switch {
		case ok:
			return nil
		case time.Now().After(deadline):
			if err == nil {
				err = errors.New("no such object")
			}
			return fmt.Errorf("%s/%s not in the bucket after %s: %w", b.name, key, within, err)
		}
		select {
		case <-time.After(100 * time.Millisecond): // polling another process's upload queue
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
