package s3store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/callcaptions/bridge/recorder"
)

// ReadJSON decodes the call's document name into v, from the spool if it
// has it, else from the bucket. The error wraps fs.ErrNotExist when
// neither has it. A call the bucket is not known to hold is not asked
// for: a new call's lookup of its past never waits for the network.
func (s *Store) ReadJSON(callID, name string, v any) error {
	err := s.Store.ReadJSON(callID, name, v)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	folder := recorder.FolderName(callID)
	if !s.isRemote(folder) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadTimeout)
	defer cancel()
	b, err := s.get(ctx, s.key(folder, name))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// get reads a whole (small) object; the error wraps fs.ErrNotExist when
// there is none.
func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// OpenTrack opens the track's recording from the spool if it has it, else
// from the bucket as a ranged reader. The error wraps fs.ErrNotExist when
// neither has it.
func (s *Store) OpenTrack(callID, track string) (io.ReadSeekCloser, error) {
	r, err := s.Store.OpenTrack(callID, track)
	if !errors.Is(err, fs.ErrNotExist) || !recorder.IsFolderName(track) {
		return r, err
	}
	folder := recorder.FolderName(callID)
	if !s.isRemote(folder) {
		return nil, err
	}
	key := s.key(folder, track+".wav")
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadTimeout)
	defer cancel()
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("open track: %w", fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open track: %w", err)
	}
	o := &object{s: s, key: key}
	if head.ContentLength != nil {
		o.size = *head.ContentLength
	}
	if head.ETag != nil {
		o.etag = *head.ETag
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o, nil
}

var _ io.ReadSeekCloser = (*object)(nil)

// object reads a stored recording at any offset. Reads go through one
// ranged GET from the offset to the end, which a Seek elsewhere closes;
// the next Read opens the next. Closing a GET early costs its connection,
// not the rest of the object.
type object struct {
	s      *Store
	key    string
	etag   string // the version opened: a GET of another (a re-upload) fails
	size   int64
	off    int64
	ctx    context.Context
	cancel context.CancelFunc

	body    io.ReadCloser
	bodyOff int64 // where body is
}

func (o *object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.body != nil && o.bodyOff != o.off {
		o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		rng := "bytes=" + strconv.FormatInt(o.off, 10) + "-"
		in := &s3.GetObjectInput{Bucket: &o.s.cfg.Bucket, Key: &o.key, Range: &rng}
		if o.etag != "" {
			in.IfMatch = &o.etag
		}
		out, err := o.s.client.GetObject(o.ctx, in)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", o.key, err)
		}
		o.body, o.bodyOff = out.Body, o.off
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyOff += int64(n)
	if err == io.EOF {
		o.body.Close()
		o.body = nil
		if o.off < o.size {
			if n > 0 {
				return n, nil
			}
			return 0, fmt.Errorf("read %s: %w", o.key, io.ErrUnexpectedEOF)
		}
	}
	return n, err
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	o.off = offset
	return offset, nil
}

func (o *object) Close() error {
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.cancel()
	return nil
}

// Scan calls fn with the record of every call in the spool (see
// recorder.Store.Scan), then with that of every call only the bucket
// holds, whose repair has nothing to do: an uploaded call ended whole.
// A bucket that cannot be read does not stop the start: it is logged, and
// the calls only it holds are not listed until a start that can read it.
func (s *Store) Scan(fn func(record []byte, repair func() (samples map[string]int64, err error))) error {
	local := map[string]bool{}
	err := s.Store.Scan(func(b []byte, repair func() (map[string]int64, error)) {
		var rec struct {
			CallID string `json:"call_id"`
		}
		if json.Unmarshal(b, &rec) == nil && rec.CallID != "" {
			local[recorder.FolderName(rec.CallID)] = true
		}
		fn(b, repair)
	})
	if err != nil {
		return err
	}
	folders, err := s.list()
	if err != nil {
		s.log.Error().Err(err).Str("bucket", s.cfg.Bucket).Msg("list the calls in the bucket; only the spool's calls are listed")
		return nil
	}
	var remote []string
	for _, folder := range folders {
		s.addRemote(folder)
		if !local[folder] {
			remote = append(remote, folder)
		}
	}
	noRepair := func() (map[string]int64, error) { return map[string]int64{}, nil }
	// The records are read scanReaders at a time, a batch at a time, and
	// handed to fn in folder order: a bucket of many calls is read in
	// round trips divided by scanReaders, holding one batch in memory.
	for len(remote) > 0 {
		batch := remote[:min(len(remote), scanBatch)]
		remote = remote[len(batch):]
		records := make([][]byte, len(batch))
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(scanReaders, len(batch)) {
			wg.Go(func() {
				for i := range next {
					records[i] = s.readRecord(batch[i])
				}
			})
		}
		for i := range batch {
			next <- i
		}
		close(next)
		wg.Wait()
		for _, b := range records {
			if b != nil {
				fn(b, noRepair)
			}
		}
	}
	return nil
}

const (
	scanReaders = 16  // records read from the bucket at once at start-up
	scanBatch   = 512 // records held at once at start-up
)

// readRecord reads a call's call.json from the bucket for the start-up
// scan; nil when there is none (an upload cut short before it: the spool
// has the call) or it cannot be read (logged; the call is not listed).
func (s *Store) readRecord(folder string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadTimeout)
	defer cancel()
	b, err := s.get(ctx, s.key(folder, recordName))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error().Err(err).Str("folder", folder).Msg("read a call's record from the bucket; the call is not listed")
		}
		return nil
	}
	return b
}

// list returns the call folders in the bucket, each page bounded by
// ReadTimeout.
func (s *Store) list() ([]string, error) {
	prefix, delim := s.callsPrefix(), "/"
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &prefix, Delimiter: &delim})
	var folders []string
	for p.HasMorePages() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadTimeout)
		page, err := p.NextPage(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, cp := range page.CommonPrefixes {
			if cp.Prefix == nil {
				continue
			}
			name := strings.TrimSuffix(strings.TrimPrefix(*cp.Prefix, prefix), "/")
			if recorder.IsFolderName(name) {
				folders = append(folders, name)
			}
		}
	}
	return folders, nil
}
