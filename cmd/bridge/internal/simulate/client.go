package simulate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/callcaptions/bridge/bridge"
)

// Client reaches a bridge's REST API and caption socket with its API
// token: what the simulator and the soak check calls through.
type Client struct {
	Base  string // http(s)://host[:port]
	Token string // API token; empty for a bridge that allows anonymous reads
	HTTP  *http.Client
}

// Header carries the API token.
func (c *Client) Header() http.Header {
	h := http.Header{}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	return h
}

// Dial opens the WebSocket at path on the bridge with header h.
func (c *Client) Dial(ctx context.Context, d *websocket.Dialer, path string, h http.Header) (*websocket.Conn, error) {
	conn, resp, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(c.Base, "http")+path, h)
	if err != nil {
		return nil, dialErr(err, resp)
	}
	return conn, nil
}

// Get fetches path and, when it answers 200 and v is not nil, decodes its
// JSON into v. It returns the HTTP status.
func (c *Client) Get(ctx context.Context, path string, v any) (int, error) {
	code, b, err := c.Fetch(ctx, path)
	if err == nil && v != nil && code == http.StatusOK {
		err = json.Unmarshal(b, v)
	}
	return code, err
}

// Fetch gets path and returns the HTTP status and the body.
func (c *Client) Fetch(ctx context.Context, path string) (code int, body []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header = c.Header()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// Ended polls the call's record until the call has ended, for at most
// within.
func (c *Client) Ended(ctx context.Context, id string, within time.Duration) (bridge.CallRecord, error) {
	deadline := time.Now().Add(within)
	for {
		var rec bridge.CallRecord
		code, err := c.Get(ctx, "/api/calls/"+url.PathEscape(id), &rec)
		switch {
		case err == nil && code != http.StatusOK:
			return rec, fmt.Errorf("call record: HTTP %d", code)
		case err == nil && rec.Status == bridge.StatusEnded:
			return rec, nil
		case time.Now().After(deadline):
			return rec, fmt.Errorf("call record still %q after %s (%v)", rec.Status, within, err)
		}
		select {
		case <-time.After(50 * time.Millisecond): // polling another process
		case <-ctx.Done():
			return rec, ctx.Err()
		}
	}
}

// CheckWAV downloads the recording of track tr of call id and says what is
// wrong with it: not a PCM16 mono WAV whose header describes exactly the
// file, not at rate, not as long as its record says or as the audio sent
// (PCM16LE), or, when exact, not that audio.
func (c *Client) CheckWAV(ctx context.Context, id string, tr bridge.TrackRecord, rate int, sent []byte, exact bool) error {
	code, b, err := c.Fetch(ctx, "/api/calls/"+url.PathEscape(id)+"/recordings/"+tr.Name+".wav")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("http %d", code)
	}
	return checkWAV(b, tr, rate, sent, exact)
}

// checkWAV says what is wrong with b as the recording of track tr (see
// CheckWAV).
func checkWAV(b []byte, tr bridge.TrackRecord, rate int, sent []byte, exact bool) error {
	le, pcm := binary.LittleEndian, b[min(len(b), 44):]
	switch {
	case len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[36:40]) != "data":
		return errors.New("not a canonical WAV")
	case int(le.Uint32(b[4:])) != len(b)-8 || int(le.Uint32(b[40:])) != len(b)-44:
		return fmt.Errorf("header sizes (%d, %d) do not match the file (%d bytes)", le.Uint32(b[4:]), le.Uint32(b[40:]), len(b))
	case le.Uint16(b[20:]) != 1 || le.Uint16(b[22:]) != 1 || le.Uint16(b[34:]) != 16:
		return errors.New("not PCM16 mono")
	case int(le.Uint32(b[24:])) != rate:
		return fmt.Errorf("%d Hz, want %d", le.Uint32(b[24:]), rate)
	case int64(len(pcm)/2) != tr.Samples:
		return fmt.Errorf("holds %d samples, its record says %d", len(pcm)/2, tr.Samples)
	case len(pcm) != len(sent):
		return fmt.Errorf("holds %d samples, %d were sent", len(pcm)/2, len(sent)/2)
	case exact && !bytes.Equal(pcm, sent):
		return errors.New("audio differs from what was sent")
	}
	return nil
}

// dialErr describes a failed upgrade, with the response's status and body.
func dialErr(err error, resp *http.Response) error {
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%w: HTTP %d %s", err, resp.StatusCode, strings.TrimSpace(string(body)))
}
