package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestS3(t *testing.T) {
	cases := []struct {
		name      string
		args, env []string
		want      S3
		problems  []string
	}{
		{name: "off by default"},
		{name: "flags", args: []string{"--s3-bucket", "calls", "--s3-prefix", "prod/", "--s3-endpoint", "http://127.0.0.1:7070",
			"--s3-region", "eu-west-1", "--s3-path-style", "--spool-keep"},
			want: S3{Bucket: "calls", Prefix: "prod/", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", PathStyle: true, SpoolKeep: true}},
		{name: "environment", env: []string{"BRIDGE_S3_BUCKET=my.calls", "BRIDGE_S3_PREFIX=b/", "BRIDGE_S3_ENDPOINT=https://s3.example.com",
			"BRIDGE_S3_REGION=auto", "BRIDGE_S3_PATH_STYLE=true", "BRIDGE_SPOOL_KEEP=true"},
			want: S3{Bucket: "my.calls", Prefix: "b/", Endpoint: "https://s3.example.com", Region: "auto", PathStyle: true, SpoolKeep: true}},
		{name: "settings without a bucket", args: []string{"--s3-prefix", "x/", "--spool-keep"},
			problems: []string{"--s3-prefix: has no effect without --s3-bucket", "--spool-keep: has no effect without --s3-bucket"}},
		{name: "bad values, all reported", args: []string{"--s3-bucket", "Not/A/Bucket", "--s3-prefix", "/abs", "--s3-endpoint", "ftp://host", "--s3-region", "eu west"},
			problems: []string{`--s3-bucket: "Not/A/Bucket" is not a bucket name`, `--s3-prefix: "/abs" must not start with /`,
				`--s3-endpoint: "ftp://host" must start with https://`, `--s3-region: "eu west" is not a region name`}},
		{name: "endpoint without host", args: []string{"--s3-bucket", "calls", "--s3-endpoint", "http://"},
			problems: []string{`--s3-endpoint: "http://" has no host`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := loadCase(t, tc.env, tc.args, tc.problems)
			if !ok {
				return
			}
			require.Equal(t, tc.want, cfg.S3)
			require.Equal(t, tc.want.Bucket != "", cfg.S3.Enabled())
		})
	}
}
