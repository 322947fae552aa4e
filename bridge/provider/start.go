package provider

import (
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
)

// Limits on custom parameters, so that a start frame with thousands of them
// costs at most a bounded map. Entries over a limit are dropped and counted
// in Start.DroppedParameters; the frame is not refused.
const (
	MaxCustomParameters  = 64
	MaxParameterKeyLen   = 256
	MaxParameterValueLen = 1024
)

// Id keys in every spelling the providers use, most common first.
var (
	streamKeys = []string{"streamSid", "streamId", "stream_id", "stream_sid"}
	callKeys   = []string{"callSid", "callId", "callUUID", "callUuid", "call_sid", "call_control_id"}
	// frameCallKeys are those a media or stop frame may carry.
	frameCallKeys = []string{"callSid", "callId", "callUUID", "call_sid", "call_control_id"}
	accountKeys   = []string{"accountSid", "accountId", "account_sid", "account_id", "user_id"}
)

// start parses a start frame. Ids are taken from the start object first and
// from the top level second (Plivo and older Vobiz put callId/streamId at
// the top level; Telnyx's stream_id is only there).
func (p *Parser) start(v *fastjson.Value, ev *Event) error {
	st := v.Get("start")
	if st != nil && st.Type() != fastjson.TypeObject {
		return p.errorf("start", "start is %s, not an object", st.Type())
	}
	s := &Start{StreamID: firstText(st, v, streamKeys), CallID: firstText(st, v, callKeys), AccountID: firstText(st, v, accountKeys)}
	s.From, _ = text(field(st, "from"))
	s.To, _ = text(field(st, "to"))
	s.Tracks = tracks(field(st, "tracks"))
	var ps params
	ps.object(field(st, "customParameters", "custom_parameters"))
	ps.object(field(v, "customParameters", "custom_parameters"))
	if cs, ok := text(field(st, "client_state")); ok && cs != "" {
		ps.add("client_state", cs)
	}
	p.extraHeaders(&ps, field(v, "extra_headers", "extraHeaders"))
	p.extraHeaders(&ps, field(st, "extra_headers", "extraHeaders"))
	return p.finish(s, field(st, "mediaFormat", "media_format"), &ps, ev)
}

// finish reads s's format from mf, stores s in ev and remembers its ids
// and format.
func (p *Parser) finish(s *Start, mf *fastjson.Value, ps *params, ev *Event) error {
	f, err := p.mediaFormat(mf)
	if err != nil {
		return err
	}
	s.Format = f
	s.CustomParameters = ps.m
	s.DroppedParameters = ps.dropped
	if ps.dropped > 0 {
		ev.Warning = WarnDroppedParameters
	}
	if s.StreamID != "" {
		p.streamID = s.StreamID
		ev.StreamID = s.StreamID
	}
	if s.CallID != "" {
		p.callID = s.CallID
		ev.CallID = s.CallID
	}
	p.format, p.hasFormat = s.Format, true
	ev.Start = s
	return nil
}

// firstText returns the first of keys present as text in st, then in top.
func firstText(st, top *fastjson.Value, keys []string) string {
	for _, o := range [2]*fastjson.Value{st, top} {
		for _, k := range keys {
			if s, ok := text(field(o, k)); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

// tracks normalises start.tracks. "both" and "both_tracks" stand for both
// tracks; names that are no track are skipped rather than failing the
// stream (a media frame on an unknown track is an error instead). A single
// string is accepted in place of an array.
func tracks(v *fastjson.Value) []string {
	if v == nil {
		return nil
	}
	names := []*fastjson.Value{v}
	if v.Type() == fastjson.TypeArray {
		names, _ = v.Array()
	}
	var in, out bool
	for _, e := range names {
		b := stringBytes(e)
		t, ok := normTrack(b)
		both := equalFold(b, "both") || equalFold(b, "both_tracks")
		in = in || both || ok && t == TrackInbound
		out = out || both || ok && t == TrackOutbound
	}
	var ts []string
	if in {
		ts = append(ts, TrackInbound)
	}
	if out {
		ts = append(ts, TrackOutbound)
	}
	return ts
}

// mediaFormat reads a media format object: mediaFormat / media_format, or for
// Vonage the frame itself ("content-type"). The rate comes from
// sampleRate / sample_rate, else from a "rate=" parameter or "@16000h"
// modifier of the encoding, else from the codec's default.
func (p *Parser) mediaFormat(mf *fastjson.Value) (Format, error) {
	f := Format{Channels: 1, Order: p.d.Order}
	rawV := field(mf, "encoding", "content-type", "contentType", "codec")
	if rawV != nil {
		f.Raw, _ = text(rawV)
	}
	enc, rate := parseEncoding(f.Raw)
	if rawV == nil || strings.TrimSpace(f.Raw) == "" {
		enc, rate = p.d.defaultEncoding, p.d.defaultRate
	}
	f.Encoding = enc

	n, has, err := p.intField("start", "sample rate", func(n int64) bool { return n > 0 && n <= 1_000_000 },
		mf, "sampleRate", "sample_rate", "rate")
	switch {
	case err != nil:
		return f, err
	case has:
		f.SampleRate = int(n)
	case rate > 0:
		f.SampleRate = rate
	case enc != "":
		f.SampleRate = 8000
	}

	if n, has, err = p.intField("start", "channels", func(n int64) bool { return n > 0 && n <= 16 }, mf, "channels"); err != nil {
		return f, err
	} else if has {
		f.Channels = int(n)
	}

	// Exotel states the sample size; anything but 16-bit linear is not L16.
	if n, has, err = p.intField("start", "bit_rate", nil, mf, "bit_rate", "bitRate", "bits"); err != nil {
		return f, err
	}
	if has && n != 16 && f.Encoding == L16 {
		f.Encoding = ""
		f.Raw += " (bit_rate " + strconv.FormatInt(n, 10) + ")"
	}
	return f, nil
}

// parseEncoding normalises an encoding as the providers spell it, ignoring
// case: "audio/x-mulaw", "PCMU", "audio/x-L16", "audio/x-l16;rate=16000",
// "audio/l16;rate=16000", "L16@24000h@40i", "audio/x-raw", "raw/slin", … .
// rate is 0 unless the string carries one.
func parseEncoding(raw string) (enc Encoding, rate int) {
	base, params, _ := strings.Cut(raw, ";")
	base, mods, _ := strings.Cut(strings.TrimSpace(base), "@")
	for _, m := range strings.Split(mods, "@") {
		if r, ok := strings.CutSuffix(strings.ToLower(m), "h"); ok {
			if n, err := strconv.Atoi(r); err == nil && n > 0 {
				rate = n
			}
		}
	}
	for _, kv := range strings.Split(params, ";") {
		k, val, _ := strings.Cut(kv, "=")
		if strings.EqualFold(strings.TrimSpace(k), "rate") {
			if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
				rate = n
			}
		}
	}
	switch strings.ToLower(base) {
	case "pcmu", "audio/x-mulaw", "audio/mulaw", "audio/pcmu", "audio/basic", "mulaw", "ulaw", "x-mulaw", "g711_ulaw":
		return PCMU, rate
	case "pcma", "audio/x-alaw", "audio/alaw", "audio/pcma", "alaw", "x-alaw", "g711_alaw":
		return PCMA, rate
	case "l16", "audio/l16", "audio/x-l16", "x-l16", "audio/x-raw", "raw/slin", "slin", "audio/slin", "linear16":
		return L16, rate
	}
	return "", rate
}

// params collects custom parameters within the limits.
type params struct {
	m       map[string]string
	dropped int
}

func (ps *params) add(k, v string) {
	switch {
	case k == "", len(k) > MaxParameterKeyLen, len(v) > MaxParameterValueLen:
		ps.dropped++
		return
	}
	if _, dup := ps.m[k]; dup {
		return // the first source wins: customParameters before extra_headers
	}
	if len(ps.m) >= MaxCustomParameters {
		ps.dropped++
		return
	}
	if ps.m == nil {
		ps.m = make(map[string]string)
	}
	ps.m[k] = v
}

// value adds one JSON value: strings as they are, numbers and booleans as
// their JSON text, null as "", objects and arrays as compact JSON.
func (ps *params) value(k []byte, v *fastjson.Value) {
	s := ""
	switch v.Type() {
	case fastjson.TypeString:
		s = string(stringBytes(v))
	case fastjson.TypeNull:
	default:
		s = string(v.MarshalTo(nil))
	}
	ps.add(string(k), s)
}

// object adds every entry of a JSON object; other types are ignored.
func (ps *params) object(v *fastjson.Value) {
	if v == nil || v.Type() != fastjson.TypeObject {
		return
	}
	o, _ := v.Object()
	o.Visit(ps.value)
}
