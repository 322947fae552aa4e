// Package s3store keeps ended calls in an S3-compatible object store, with
// the local call folders of recorder.Store as the spool in front of it.
//
// Calls are recorded to local folders exactly as without object storage.
// When a call ends, its folder is uploaded to
//
//	<prefix>calls/<call folder>/call.json
//	<prefix>calls/<call folder>/transcript.json
//	<prefix>calls/<call folder>/<track>.wav
//
// with the same names and bytes as on disk (an earlier part of a call
// continued on another replica under parts/<started_at>/ of that folder:
// see place); the call folder is
// recorder.FolderName of the call id, so an unsafe id has the same name in
// the bucket as on disk. The recordings go first and call.json last: a
// call.json in the bucket means the call's other files are there.
//
// Each object is sent with its Content-MD5, which the store checks, and
// read back with a HEAD that must show its size. A marker in the folder
// (.uploaded.json, never served: document names cannot start with a dot)
// records the size and modification time of every file uploaded, so a
// file is uploaded again only when it changed (a continued call, a status
// callback written into call.json later), and a folder kept with Keep is
// not uploaded again at every start.
//
// Goroutines: Run owns them all: Workers uploaders and one sweep; when
// stopped it goes on with the calls already queued for up to FlushTimeout
// (a shutdown's last calls), then returns. Upload never blocks: it adds
// the call to the bounded queue (see queue.go for its bound, its policy
// when full and its retries). The sweep, at Run's start and every
// SweepEvery, finds every ended call in the spool that is not uploaded as
// it is now (after a crash, a full queue, a failed upload, a later change)
// or whose local copy may go, and queues it. Scan reads the bucket's call
// records with a few goroutines of its own, awaited before it returns.
//
// A read from the bucket (a record, a transcript, the start of a
// recording) is bounded by ReadTimeout; the S3 client does not retry (see
// ClientOptions).
//
// Spool rule: once a call's folder is uploaded and verified, it is removed
// unless Keep is set, but never while the call may still be continued: a
// call id that comes back within the resume window appends to its
// recordings, so the folder stays until ResumeWindow (plus a minute) has
// passed since the call ended, then the sweep removes it (a call that may
// not be continued, ResumeWindow negative, goes at once).
//
// Reads (ReadJSON, OpenTrack, Scan) look in the spool first and then in the
// bucket, for the calls listed there at start-up and those uploaded since.
// A recording read from the bucket is a ranged reader: each Seek that
// moves it starts a new ranged GET, so serving a byte range downloads that
// range, not the object.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/recorder"
)

// Config is where calls go and how the spool is kept. Zero values are the
// documented defaults.
type Config struct {
	Bucket string
	// Prefix is put before "calls/" in every key, as it is: end it with a
	// "/" to make it a folder.
	Prefix string
	// Keep keeps the local copy after a verified upload.
	Keep bool
	// ResumeWindow is how long after its end a call may be continued; the
	// local copy is kept that long (plus a minute). Negative: calls are
	// never continued, the copy goes after the upload. Zero: 10m, the
	// bridge's default.
	ResumeWindow time.Duration
	// QueueSize bounds the calls waiting for upload (default 10,000).
	QueueSize int
	// Workers is how many calls are uploaded at once (default 4).
	Workers int
	// SweepEvery is how often the spool is searched for calls to upload or
	// remove (default 1m).
	SweepEvery time.Duration
	// BackoffInitial and BackoffMax bound the wait before a failed upload
	// is tried again: it doubles from the first to the second, each wait
	// drawn at random between half and all of it (defaults 1s and 30s).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// FlushTimeout is how long Run goes on uploading the calls queued
	// when it is stopped (default 10s).
	FlushTimeout time.Duration
	// ReadTimeout bounds a JSON read from the bucket and the start of a
	// recording's read (default 30s).
	ReadTimeout time.Duration
	// Now is the wall clock (tests may replace it).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.ResumeWindow == 0 {
		c.ResumeWindow = 10 * time.Minute
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 10_000
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = time.Minute
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Store is the spool (a recorder.Store, whose methods it has) with the
// bucket behind it.
type Store struct {
	*recorder.Store
	cfg     Config
	client  *s3.Client
	metrics *Metrics
	log     zerolog.Logger
	failLog zerolog.Logger // failed uploads, which repeat through an outage
	queue   *queue

	mu     sync.RWMutex
	remote map[string]struct{} // call folders known to be in the bucket
}

// New returns the store that keeps spool's calls in cfg.Bucket through
// client. metrics may be nil (counted, not registered). Call Run to upload.
func New(cfg Config, spool *recorder.Store, client *s3.Client, metrics *Metrics, log zerolog.Logger) *Store {
	cfg.defaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	log = log.With().Str("component", "s3").Logger()
	return &Store{
		Store: spool, cfg: cfg, client: client, metrics: metrics,
		log: log, failLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		queue:  newQueue(cfg.QueueSize, metrics.backlog),
		remote: map[string]struct{}{},
	}
}

// key is the object key of a call folder's file.
func (s *Store) key(folder, file string) string {
	return s.cfg.Prefix + path.Join("calls", folder, file)
}

// callsPrefix is the key prefix under which the call folders are listed.
func (s *Store) callsPrefix() string { return s.cfg.Prefix + "calls/" }

func (s *Store) isRemote(folder string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.remote[folder]
	return ok
}

func (s *Store) addRemote(folder string) {
	s.mu.Lock()
	s.remote[folder] = struct{}{}
	s.mu.Unlock()
}

// isNotFound reports whether err is the store saying there is no such
// object (GET says NoSuchKey, HEAD only its status).
func isNotFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	var resp interface{ HTTPStatusCode() int }
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound
}

// Check asks the bucket whether it is there and reachable with the
// credentials given, for a start-up that says so early.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket}); err != nil {
		return fmt.Errorf("bucket %s: %w", s.cfg.Bucket, err)
	}
	return nil
}

// ClientOptions sets up an S3 client for this store: endpoint (empty:
// AWS's for the region) and path-style addressing, which most
// S3-compatible servers want. Checksums are sent and checked only where
// the API requires them: every upload carries its Content-MD5 instead,
// which every S3-compatible server checks. The client does not retry: an
// upload is retried by the queue, with its own backoff (one retry policy,
// not two in series), and a read fails to its caller, who may ask again.
func ClientOptions(endpoint string, pathStyle bool) func(*s3.Options) {
	return func(o *s3.Options) {
		o.Retryer = aws.NopRetryer{}
		if endpoint != "" {
			o.BaseEndpoint = &endpoint
		}
		o.UsePathStyle = pathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
}
