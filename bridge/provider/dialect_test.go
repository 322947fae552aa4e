package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWireRoundTrip: what each dialect's Wire writes is detected as
// that dialect and parses back to the same ids, audio and stop, so the
// simulator and the soak speak what the bridge reads.
func TestWireRoundTrip(t *testing.T) {
	for _, d := range dialects {
		if d.Wire == nil {
			continue
		}
		t.Run(string(d.Name), func(t *testing.T) {
			w := d.Wire
			ids := w.NewIDs()
			tracks := []string{TrackInbound}
			if w.Stereo {
				tracks = append(tracks, TrackOutbound)
			}
			var frames [][]byte
			if f := w.Connected(); f != nil {
				frames = append(frames, f)
			}
			frames = append(frames, w.Start(ids, tracks, w.Encodings[0], 8000, map[string]string{"k": "v"}))

			var det Detector
			var name Name
			for _, f := range frames {
				n, done, err := det.Feed(f, true)
				require.NoError(t, err)
				if done {
					name = n
				}
			}
			require.Equal(t, d.Name, name)

			p := NewParser(d.Name)
			var ev Event
			for _, f := range frames {
				require.NoError(t, p.Parse(f, &ev))
			}
			require.Equal(t, KindStart, ev.Kind)
			require.Equal(t, ids.Call, ev.Start.CallID)
			require.Equal(t, ids.Stream, ev.Start.StreamID)
			require.NotEmpty(t, ev.Start.CustomParameters) // Telnyx carries them as one base64 client_state

			audio := []byte("0123456789abcdef")
			payload := []byte(base64.StdEncoding.EncodeToString(audio))
			buf := w.AppendMedia(nil, ids, w.FirstSeq, 1, 20, TrackInbound, payload)
			require.NoError(t, p.Parse(buf, &ev))
			require.Equal(t, KindMedia, ev.Kind)
			require.Equal(t, audio, ev.Payload)
			require.Equal(t, int64(1), ev.Chunk)
			allocs := testing.AllocsPerRun(100, func() {
				buf = w.AppendMedia(buf[:0], ids, w.FirstSeq, 2, 40, TrackInbound, payload)
			})
			require.Zero(t, allocs, "media frames are written into the caller's buffer")

			if f := w.Stop(ids, w.FirstSeq+1); f != nil {
				require.NoError(t, p.Parse(f, &ev))
				require.Equal(t, KindStop, ev.Kind)
			}
		})
	}
}

// TestSignatures: a signature over any of the candidate URLs verifies, in
// the encodings each provider sends; anything else does not.
func TestSignatures(t *testing.T) {
	urls := []string{"https://h:443/instructions/twilio", "https://h/instructions/twilio"}
	form := url.Values{"CallSid": {"CA1"}, "From": {"+1"}}
	body := []byte(`{"call":{"from":"+1"}}`)
	twilioSig := base64.StdEncoding.EncodeToString(TwilioMAC("key", urls[1], form))
	m := hmac.New(sha1.New, []byte("key"))
	m.Write([]byte(urls[1]))
	m.Write(body)
	swSig := hex.EncodeToString(m.Sum(nil))

	require.True(t, TwilioSignatureOK("key", twilioSig, urls, form))
	require.False(t, TwilioSignatureOK("other", twilioSig, urls, form))
	require.False(t, TwilioSignatureOK("key", twilioSig, urls[:1], form))
	require.False(t, TwilioSignatureOK("key", "not base64!", urls, form))
	require.True(t, SignalWireSignatureOK("key", swSig, urls, body, nil))
	require.True(t, SignalWireSignatureOK("key", twilioSig, urls, nil, form), "cXML requests are signed as Twilio's")
	require.False(t, SignalWireSignatureOK("key", swSig, urls, []byte("{}"), nil))
}
