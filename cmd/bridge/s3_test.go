package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
)

// callFileNames are the files of a two-track call, as on disk and in the
// bucket.
var callFileNames = []string{"call.json", "transcript.json", "inbound.wav", "outbound.wav"}

// s3Config is testConfig with the bucket of srv, reached with the
// server's credentials through the AWS environment.
func s3Config(t *testing.T, srv *s3test.Server, bucket string) config.Config {
	t.Helper()
	srv.Setenv(t)
	cfg := testConfig(t)
	cfg.S3 = config.S3{Bucket: bucket, Endpoint: srv.Endpoint(), Region: s3test.Region, PathStyle: true}
	return cfg
}

// readCallFiles reads a call folder's files by name.
func readCallFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range callFileNames {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		out[name] = b
	}
	return out
}

// objectsEqual reports whether the bucket holds want under the call's
// folder.
func objectsEqual(srv *s3test.Server, bucket, prefix, id string, want map[string][]byte) bool {
	for name, b := range want {
		got, ok := srv.Object(bucket, prefix+"calls/"+recorder.FolderName(id)+"/"+name)
		if !ok || string(got) != string(b) {
			return false
		}
	}
	return true
}

// endCall plays a short Twilio call and ends it with stop.
func endCall(t *testing.T, base, sid string, frames int) {
	t.Helper()
	p := playTwilio(t, base, sid, frames)
	p.waitReceived(t, base)
	send(t, p.conn, twilioStop("MZ"+sid[2:], sid, 2*frames+2))
	waitEnded(t, base, sid)
}

func gone(dir string) bool {
	_, err := os.Stat(dir)
	return os.IsNotExist(err)
}

// getRange fetches a byte range of a recording.
func getRange(t *testing.T, base, id, track, rng string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/calls/"+url.PathEscape(id)+"/recordings/"+track+".wav", nil)
	require.NoError(t, err)
	req.Header.Set("Range", rng)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestS3UploadWhenCallEnds: an ended call's files reach the bucket as
// they are on disk, under the same folder name, a safe id and an unsafe
// one alike; --spool-keep keeps the local copy.
func TestS3UploadWhenCallEnds(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	cfg := s3Config(t, srv, bucket)
	cfg.S3.Prefix, cfg.S3.SpoolKeep = "bridge/", true
	_, base := startBridge(t, cfg)
	for _, sid := range []string{"CAs3upload000000000000000000000001", "CA weird/../id *1"} {
		t.Run(sid, func(t *testing.T) {
			endCall(t, base, sid, 100)
			dir := filepath.Join(cfg.Data, "calls", recorder.FolderName(sid))
			// Read the local files in the poll: the call is listed as ended a
			// moment before its last documents are written.
			var local map[string][]byte
			eventually(t, func() bool {
				local = readCallFiles(t, dir)
				return objectsEqual(srv, bucket, "bridge/", sid, local)
			}, 15*time.Second, 50*time.Millisecond, "the bucket does not hold the call's files as on disk")
			require.DirExists(t, dir, "--spool-keep")
			var rec bridge.CallRecord
			require.NoError(t, json.Unmarshal(local["call.json"], &rec))
			require.Equal(t, sid, rec.CallID)
		})
	}
	require.Equal(t, 2.0, metric(t, base, `bridge_s3_uploads_total{result="ok"}`))
	require.Zero(t, metric(t, base, "bridge_s3_upload_backlog"))
}

// TestS3Outage: with the bucket unreachable when a call ends, the call
// waits in the spool and the backlog shows it; once the bucket is back it
// is uploaded and the local copy removed, and the API then serves the
// call from the bucket.
func TestS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	cfg := s3Config(t, srv, bucket)
	cfg.Limits.ResumeWindow = 0 // calls are not continued: the copy may go at once
	_, base := startBridge(t, cfg)

	const sid = "CAs3outage000000000000000000000001"
	dir := filepath.Join(cfg.Data, "calls", sid)
	srv.Stop()
	endCall(t, base, sid, 150)
	eventually(t, func() bool {
		return metric(t, base, "bridge_s3_upload_backlog") == 1 && metric(t, base, `bridge_s3_uploads_total{result="failed"}`) >= 1
	}, 20*time.Second, 50*time.Millisecond, "the failed upload is not in the backlog")
	require.DirExists(t, dir, "the local copy stays while the bucket is unreachable")
	local := readCallFiles(t, dir)

	srv.Restart()
	eventually(t, func() bool { return gone(dir) && metric(t, base, "bridge_s3_upload_backlog") == 0 }, 40*time.Second, 50*time.Millisecond,
		"the call was not uploaded and removed once the bucket was back")
	require.True(t, objectsEqual(srv, bucket, "", sid, local))
	require.Equal(t, 1.0, metric(t, base, "bridge_s3_spool_removed_total"))

	// Served from the bucket now.
	var tr bridge.Transcript
	require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls/"+sid+"/transcript", &tr))
	var want bridge.Transcript
	require.NoError(t, json.Unmarshal(local["transcript.json"], &want))
	require.Equal(t, want, tr)
	code, b := getRange(t, base, sid, "inbound", "bytes=100-1099")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, local["inbound.wav"][100:1100], b)
	code, b = getRange(t, base, sid, "outbound", "bytes=0-")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, local["outbound.wav"], b)
}

// TestS3Process runs the built binary with the object storage flags and
// the AWS environment: calls left in the data directory by a bridge
// without a bucket (one ended, one cut by a crash and repaired at the
// start) are uploaded at the next start, a call played into it is
// uploaded when it ends, and a start with an empty data directory lists
// both from the bucket and serves them.
func TestS3Process(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("bridge-e2e")
	srv.Setenv(t)
	bin := buildBridge(t, t.TempDir())
	data := t.TempDir()
	const before, during = "CAs3process00000000000000000000001", "CAs3process00000000000000000000002"
	const crashed = "CAs3process00000000000000000000003"

	c1 := startChild(t, bin, data)
	endCall(t, c1.base, before, 100)
	live := playTwilio(t, c1.base, crashed, 100)
	live.waitReceived(t, c1.base)
	c1.signal(t, syscall.SIGKILL) // a crash mid-call
	c1.wait(t, 30*time.Second)
	local := readCallFiles(t, callDir(data, before))

	s3Args := []string{"--s3-bucket", bucket, "--s3-endpoint", srv.Endpoint(), "--s3-region", s3test.Region, "--s3-path-style",
		"--s3-prefix", "e2e/", "--resume-window", "0"}
	c2 := startChild(t, bin, data, s3Args...)
	eventually(t, func() bool { return gone(callDir(data, before)) && gone(callDir(data, crashed)) }, 20*time.Second, 50*time.Millisecond,
		"the spool's calls were not uploaded at start")
	require.True(t, objectsEqual(srv, bucket, "e2e/", before, local), "the bucket does not hold the call as it was on disk")
	// The call the crash cut is uploaded as the start-up repair left it.
	b, ok := srv.Object(bucket, "e2e/calls/"+crashed+"/call.json")
	require.True(t, ok)
	var rec bridge.CallRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	require.Equal(t, bridge.StatusInterrupted, rec.Status)
	wav, ok := srv.Object(bucket, "e2e/calls/"+crashed+"/inbound.wav")
	require.True(t, ok)
	n := len(parseWAV(t, wav).raw) // a whole WAV: repaired before the upload
	require.True(t, n >= 8000*2 && n <= 8000*2*2, "the repaired recording keeps what reached the disk of 2 s sent: %d bytes", n)

	p := playTwilio(t, c2.base, during, 80)
	p.waitReceived(t, c2.base)
	send(t, p.conn, twilioStop("MZ"+during[2:], during, 200))
	waitEnded(t, c2.base, during)
	eventually(t, func() bool { return gone(callDir(data, during)) }, 20*time.Second, 50*time.Millisecond, "the ended call was not uploaded")
	require.ElementsMatch(t, []string{"call.json", "transcript.json", "inbound.wav", "outbound.wav"},
		trimKeys(srv.Keys(bucket, "e2e/calls/"+during+"/"), "e2e/calls/"+during+"/"))
	c2.signal(t, syscall.SIGTERM)
	require.Zero(t, c2.wait(t, 30*time.Second))

	c3 := startChild(t, bin, t.TempDir(), s3Args...)
	var list struct {
		Calls []bridge.CallRecord `json:"calls"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, c3.base, "/api/calls", &list))
	var ids []string
	for _, c := range list.Calls {
		ids = append(ids, c.CallID)
	}
	require.True(t, slices.Contains(ids, before) && slices.Contains(ids, during) && slices.Contains(ids, crashed), "listed: %v", ids)
	var tr bridge.Transcript
	require.Equal(t, http.StatusOK, getJSON(t, c3.base, "/api/calls/"+before+"/transcript", &tr))
	require.Equal(t, before, tr.CallID)
	code, b := getRange(t, c3.base, before, "outbound", "bytes=44-2043")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, local["outbound.wav"][44:2044], b)
}

func trimKeys(keys []string, prefix string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k[len(prefix):]
	}
	return out
}

// TestS3ContinuedCall: an uploaded call keeps its local copy through the
// resume window, so a stream that comes back continues its recording, and
// the continued call is uploaded again when it ends.
func TestS3ContinuedCall(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	cfg := s3Config(t, srv, bucket) // --resume-window 10m
	_, base := startBridge(t, cfg)
	const sid = "CAs3resume000000000000000000000001"
	dir := filepath.Join(cfg.Data, "calls", sid)
	gen := bursts(300, 8000, 0.1, 0.5, 1.2)
	play := func(stream string) {
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
		for k := range 100 {
			send(t, c, twilioMedia(stream, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
		}
		send(t, c, twilioStop(stream, sid, 102))
	}
	files := func() map[string][]byte {
		out := map[string][]byte{}
		for _, name := range []string{"call.json", "transcript.json", "inbound.wav"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err)
			out[name] = b
		}
		return out
	}

	play("MZs3resume000000000000000000000001")
	waitEnded(t, base, sid)
	var first map[string][]byte
	eventually(t, func() bool { first = files(); return objectsEqual(srv, bucket, "", sid, first) }, 15*time.Second, 50*time.Millisecond,
		"the first part was not uploaded")
	require.DirExists(t, dir, "kept while the call may be continued")

	play("MZs3resume000000000000000000000002")
	eventually(t, func() bool {
		rec, code := record(t, base, sid)
		return code == http.StatusOK && rec.Status == bridge.StatusEnded && len(rec.Streams) == 2
	}, 15*time.Second, 20*time.Millisecond, "the call was not continued")
	var second map[string][]byte
	eventually(t, func() bool { second = files(); return objectsEqual(srv, bucket, "", sid, second) }, 15*time.Second, 50*time.Millisecond,
		"the continued call was not uploaded again")
	require.Greater(t, len(second["inbound.wav"]), len(first["inbound.wav"]), "the recording went on")
	require.Equal(t, first["inbound.wav"][44:], second["inbound.wav"][44:len(first["inbound.wav"])], "the first part is kept as it was")
	require.DirExists(t, dir)
}
