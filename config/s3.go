package config

import (
	"net/url"
	"strings"
)

// S3 configures object storage of ended calls. Off when Bucket is empty:
// everything stays in the data directory. Credentials come from the
// standard AWS chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared
// config and credentials files, an instance or task role).
type S3 struct {
	Bucket    string `name:"s3-bucket" env:"BRIDGE_S3_BUCKET" help:"Bucket that ended calls are uploaded to (calls/<call_id>/call.json, transcript.json, <track>.wav under --s3-prefix); the data directory becomes a spool. Empty: no object storage."`
	Prefix    string `name:"s3-prefix" env:"BRIDGE_S3_PREFIX" help:"Put before calls/ in every key, as it is (end it with / for a folder, e.g. bridge/)."`
	Endpoint  string `name:"s3-endpoint" env:"BRIDGE_S3_ENDPOINT" help:"URL of an S3-compatible server (MinIO, versitygw, R2, …). Empty: AWS S3."`
	Region    string `name:"s3-region" env:"BRIDGE_S3_REGION" help:"Region of the bucket. Empty: from the AWS configuration (AWS_REGION), else us-east-1 with --s3-endpoint."`
	PathStyle bool   `name:"s3-path-style" default:"false" env:"BRIDGE_S3_PATH_STYLE" help:"Address the bucket in the path (http://host/bucket/key), as most S3-compatible servers want, instead of in the host name."`
	SpoolKeep bool   `name:"spool-keep" default:"false" env:"BRIDGE_SPOOL_KEEP" help:"Keep the local copy of a call after its verified upload. Default: removed once the call can no longer be continued (--resume-window after its end)."`
}

// Enabled reports whether ended calls go to object storage.
func (s S3) Enabled() bool { return s.Bucket != "" }

// check reports every problem with the object storage settings.
func (s S3) check(bad func(setting, format string, a ...any)) {
	if !s.Enabled() {
		for _, set := range []struct {
			flag string
			on   bool
		}{{"s3-prefix", s.Prefix != ""}, {"s3-endpoint", s.Endpoint != ""}, {"s3-region", s.Region != ""}, {"s3-path-style", s.PathStyle}, {"spool-keep", s.SpoolKeep}} {
			if set.on {
				bad(set.flag, "has no effect without --s3-bucket")
			}
		}
		return
	}
	if len(s.Bucket) < 3 || len(s.Bucket) > 63 || strings.Trim(s.Bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" {
		bad("s3-bucket", "%q is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", s.Bucket)
	}
	if strings.HasPrefix(s.Prefix, "/") || strings.Contains(s.Prefix, "//") || strings.ContainsAny(s.Prefix, "\x00\r\n") {
		bad("s3-prefix", "%q must not start with / or hold an empty segment (e.g. bridge/ or prod/bridge/)", s.Prefix)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		switch {
		case err != nil:
			bad("s3-endpoint", "%q does not parse: %v", s.Endpoint, err)
		case u.Scheme != "https" && u.Scheme != "http":
			bad("s3-endpoint", "%q must start with https:// (or http:// on a trusted network)", s.Endpoint)
		case u.Host == "":
			bad("s3-endpoint", "%q has no host", s.Endpoint)
		}
	}
	if s.Region != "" && strings.ContainsAny(s.Region, " /\t\r\n") {
		bad("s3-region", "%q is not a region name (e.g. eu-west-1)", s.Region)
	}
}
