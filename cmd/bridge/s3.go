package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/recorder/s3store"
	"github.com/callcaptions/bridge/web"
)

// --s3-bucket: the data directory becomes the spool of an S3 bucket. The
// calls are recorded in the spool as without it; a publisher beside the
// caption hub queues each call's upload when it sees call.ended (the event
// comes after the call's recordings are closed and its documents
// written), and the spool's sweep finds whatever that missed.

// newObjectStore connects to the bucket of --s3-bucket; nil when it is
// not set. A bucket that cannot be reached is not fatal: calls are kept in
// the spool and uploaded once it can.
func newObjectStore(cfg config.Config, spool *recorder.Store, reg prometheus.Registerer, log zerolog.Logger) (*s3store.Store, error) {
	if !cfg.S3.Enabled() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := newS3Client(ctx, cfg.S3)
	if err != nil {
		return nil, err
	}
	objects := s3store.New(s3store.Config{
		Bucket: cfg.S3.Bucket, Prefix: cfg.S3.Prefix, Keep: cfg.S3.SpoolKeep,
		ResumeWindow: offIfZero(cfg.Limits.ResumeWindow),
	}, spool, client, s3store.NewMetrics(reg), log)
	if err := objects.Check(ctx); err != nil {
		log.Warn().Err(err).Str("bucket", cfg.S3.Bucket).
			Msg("object storage unreachable at start-up: ended calls stay in the data directory until it is (bridge_s3_upload_backlog)")
	}
	log.Info().Str("bucket", cfg.S3.Bucket).Str("prefix", cfg.S3.Prefix).Str("endpoint", cfg.S3.Endpoint).Bool("spool_keep", cfg.S3.SpoolKeep).
		Msg("ended calls are uploaded to object storage; the data directory is their spool")
	return objects, nil
}

// newS3Client builds the S3 client from the AWS credential chain and the
// --s3-* settings.
func newS3Client(ctx context.Context, c config.S3) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("--s3-bucket: AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if c.Endpoint == "" {
			return nil, errors.New("--s3-region: no region for AWS S3: set --s3-region or AWS_REGION")
		}
		awsCfg.Region = "us-east-1" // what S3-compatible servers accept when they do not care
	}
	return s3.NewFromConfig(awsCfg, s3store.ClientOptions(c.Endpoint, c.PathStyle)), nil
}

// storeOf is the bridge's Store: the data directory, with the bucket
// behind it when there is one.
func storeOf(spool *recorder.Store, objects *s3store.Store) bridge.Store {
	if objects == nil {
		return fileStore{spool}
	}
	return objectFiles{objects}
}

// publishersOf are the bridge's publishers: the caption hub, and the
// uploads when there is a bucket.
func publishersOf(hub *web.Hub, objects *s3store.Store) bridge.Fanout {
	if objects == nil {
		return bridge.Fanout{hub}
	}
	return bridge.Fanout{hub, uploadOnEnd{objects}}
}

// runUploads runs the uploads of --s3-bucket (none without a bucket)
// beside the server. Stopped once the calls have drained, so that their
// uploads are queued, it finishes them (bounded by its flush timeout).
func runUploads(objects *s3store.Store) *beside {
	if objects == nil {
		return runBeside(nil)
	}
	return runBeside(objects.Run)
}

// objectFiles is the spool with the bucket behind it as the bridge's
// Store: calls are opened in the spool, read from it or else from the
// bucket.
type objectFiles struct{ *s3store.Store }

var (
	_ bridge.Store     = objectFiles{}
	_ bridge.Publisher = uploadOnEnd{}
)

func (s objectFiles) Open(callID string) (bridge.CallFiles, error) {
	c, err := s.Store.Open(callID)
	if err != nil {
		return nil, err
	}
	return callFiles{c}, nil
}

// uploadOnEnd queues a call's upload when it ends. Upload never blocks.
type uploadOnEnd struct{ objects *s3store.Store }

func (u uploadOnEnd) Publish(ev bridge.Event) {
	if ev.Type == bridge.TypeCallEnded {
		u.objects.Upload(ev.CallID)
	}
}

// objectURL names a call's file in the bucket (recording.ready's
// object_url); nil without --s3-bucket.
func objectURL(cfg config.Config) func(callID, file string) string {
	if !cfg.S3.Enabled() {
		return nil
	}
	return func(callID, file string) string {
		return "s3://" + cfg.S3.Bucket + "/" + cfg.S3.Prefix + "calls/" + recorder.FolderName(callID) + "/" + file
	}
}
