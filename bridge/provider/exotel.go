package provider

import (
	"net/url"
	"strconv"
)

// Exotel Voicebot/Stream applets: a bare connected frame, a snake_case
// start (stream_sid, call_sid), little-endian L16 ("raw/slin") in 100 ms
// chunks, one track, and a stop.
const Exotel Name = "exotel"

var exotel = &Dialect{
	Name: Exotel, Order: LittleEndian, defaultEncoding: L16, defaultRate: 8000,
	Markup: []Markup{{Kind: "exotel", Build: exotelGuide}},
	Wire: &Wire{
		Encodings: []Encoding{L16}, L16Rates: []int{8000, 16000, 24000}, FrameMs: 100, FirstSeq: 2,
		ids:       func() IDs { return IDs{Call: randHex(16), Stream: "MZ" + randHex(16), Account: "sim-account"} },
		connected: `{"event":"connected"}`,
		start: func(ids IDs, _ []string, _ Encoding, rate int, params map[string]string) any {
			return map[string]any{
				"event": "start", "sequence_number": "1", "stream_sid": ids.Stream,
				"start": map[string]any{
					"stream_sid": ids.Stream, "call_sid": ids.Call, "account_sid": ids.Account,
					"from": "+915550100001", "to": "+915550100002", "custom_parameters": params,
					"media_format": map[string]any{"encoding": "audio/x-raw", "sample_rate": strconv.Itoa(rate), "bit_rate": "16"},
				},
			}
		},
		media: `{"event":"media","sequence_number":"$seq","stream_sid":"$stream",` +
			`"media":{"chunk":"$chunk","timestamp":"$ts","payload":"$payload"}}`,
		stop: `{"event":"stop","sequence_number":"$seq","stream_sid":"$stream",` +
			`"stop":{"call_sid":"$call","account_sid":"$account","reason":"callended"}}`,
	},
}

// exotelGuide is what to paste into an Exotel Stream or Voicebot applet:
// Exotel's stream URL is configured in its dashboard, not returned by a
// webhook.
type exotelGuideDoc struct {
	Provider       string   `json:"provider"`
	StreamURL      string   `json:"stream_url"`
	StreamURL16k   string   `json:"stream_url_16k"`
	Authentication string   `json:"authentication"`
	Codecs         string   `json:"codecs"`
	Steps          []string `json:"steps"`
}

func exotelGuide(req StreamRequest) ([]byte, string, error) {
	u := req.Media
	q := url.Values{}
	for _, kv := range req.Params {
		if kv[0] != "from" && kv[0] != "to" && len(q) < 3 { // Exotel passes at most 3 query parameters on
			q.Set(kv[0], kv[1])
		}
	}
	stream, sep := u, "?"
	if qs := q.Encode(); qs != "" {
		stream, sep = u+"?"+qs, "&"
	}
	return marshalJSON(exotelGuideDoc{
		Provider: "exotel", StreamURL: stream, StreamURL16k: stream + sep + "sample-rate=16000", Authentication: req.Scheme,
		Codecs: "16-bit little-endian PCM (raw/slin) at 8000 Hz, or 16000/24000 Hz with ?sample-rate=",
		Steps: []string{
			"In the Exotel dashboard, open App Bazaar and edit the call flow of your number.",
			"Add a Stream applet (captions only) or a Voicebot applet (bidirectional) where the call should be captioned.",
			"Paste stream_url (or stream_url_16k for wideband audio) as the applet's WebSocket URL and save.",
			"Place a call: the call appears on the dashboard with its captions.",
		},
	})
}
