package web

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
)

// Stream status callbacks: the providers report a stream's life (started,
// stopped, failed) to a URL of their own, which the stream instructions set
// to /callbacks/<provider> (signed) or /callbacks/<provider>/<secret>. Each
// callback is kept in its call's record (call.json "callbacks"), also when
// it arrives before the media socket or after the call ended.
//
//	twilio      form POST: AccountSid, CallSid, StreamSid, StreamName, StreamEvent (stream-started|stream-stopped|stream-error), StreamError, Timestamp
//	signalwire  JSON {"event_type":"calling.call.stream","params":{"call_id","control_id","state":"streaming"|"finished",…}} (SWML status_url), or the cXML form like Twilio's
//	plivo/vobiz form or JSON with CallUUID, StreamID and the event (statusCallbackUrl)
//	telnyx      TeXML form like Twilio's: CallSid (the call_control_id), StreamSid, StreamEvent
//
// Authentication is that of the instructions routes (see checkWebhook):
// what opens the provider's media sockets (path secret, bearer token), or
// Twilio's and SignalWire's signatures when their keys are configured.
// With no media authentication configured the routes are open, like the
// media sockets, and still bounded: only the fields a record uses are kept
// (provider.Dialect.CallbackFields), each cut short, and the registry bounds callbacks per
// call and those waiting for calls that have not started, in count and
// bytes (bridge_callbacks_dropped_total counts what it drops).

// maxCallbackBody bounds one callback; the providers' are well under 4 KiB.
const maxCallbackBody = 64 << 10

func (s *Server) callback(c *fiber.Ctx) error {
	p := provider.Name(strings.Clone(c.Params("provider"))) // kept in the record: not the request's buffer
	if d := provider.Lookup(p); d == nil || d.CallbackFields == nil {
		return fiber.NewError(fiber.StatusNotFound, "no status callbacks for "+string(p)+" (twilio, signalwire, plivo, vobiz, telnyx)")
	}
	if len(c.Body()) > maxCallbackBody {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, "callback body over 64 KiB")
	}
	form, err := s.webhookForm(c, p)
	if err != nil {
		return err
	}
	cb, callID, err := parseCallback(c, p, form)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	where, err := s.reg.AttachCallback(callID, cb)
	switch {
	case errors.Is(err, bridge.ErrTooManyCallbacks):
		return fiber.NewError(fiber.StatusTooManyRequests, err.Error())
	case err != nil:
		return err
	}
	return c.JSON(fiber.Map{"call_id": callID, "attached": where})
}

// maxCallbackValue bounds one kept callback value; providers' are ids,
// event names, timestamps and short error messages.
const maxCallbackValue = 256

// keepFields filters a callback's fields through p's allow-list
// (provider.Dialect.CallbackFields: the call, the stream, the event and its
// error, when, and whose; SignalWire's RELAY events nest theirs under
// "params", filtered with the same list): strings
// cut to maxCallbackValue, numbers and booleans kept, a repeated form
// field by its first value; nested objects only as SignalWire's params.
// Keys and values are copied: parsed from the body they share its memory,
// and a few kept bytes would hold the whole body.
func keepFields(p provider.Name, in map[string]any, nested bool) map[string]any {
	allowed := provider.Lookup(p).CallbackFields
	out := map[string]any{}
	for k, v := range in {
		if !slices.Contains(allowed, k) {
			continue
		}
		k = strings.Clone(k)
		switch v := v.(type) {
		case string:
			out[k] = clipValue(v)
		case []string:
			if len(v) > 0 {
				out[k] = clipValue(v[0])
			}
		case float64, bool:
			out[k] = v
		case map[string]any:
			if k == "params" && !nested {
				out[k] = keepFields(p, v, true)
			}
		}
	}
	return out
}

// clipValue is v cut to maxCallbackValue bytes, in memory of its own.
func clipValue(v string) string {
	if len(v) <= maxCallbackValue {
		return strings.Clone(v)
	}
	n := maxCallbackValue
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n] + "…"
}

// parseCallback turns a callback into the record kept in call.json:
// {"provider","received_at","event","stream_id","params"}, where params are
// the allowed fields (provider.Dialect.CallbackFields) as the provider sent them.
func parseCallback(c *fiber.Ctx, p provider.Name, form url.Values) (map[string]any, string, error) {
	raw := map[string]any{}
	switch {
	case form != nil:
		for k, vs := range form {
			raw[k] = vs
		}
	case strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationJSON):
		if err := json.Unmarshal(c.Body(), &raw); err != nil {
			return nil, "", errors.New("callback body is not a JSON object")
		}
	default:
		c.Context().QueryArgs().VisitAll(func(k, v []byte) {
			if string(k) != "token" {
				raw[string(k)] = string(v)
			}
		})
	}
	params := keepFields(p, raw, false)
	str := func(m map[string]any, keys ...string) string {
		for _, k := range keys {
			if v, ok := m[k].(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	// SignalWire RELAY events carry their fields under params.
	fields := params
	if inner, ok := params["params"].(map[string]any); ok {
		fields = inner
	}
	callID := str(fields, "CallSid", "call_id", "CallUUID", "CallUuid", "call_uuid", "callUUID", "CallId", "callId", "call_control_id")
	if callID == "" {
		return nil, "", errors.New("callback names no call (CallSid, call_id or CallUUID)")
	}
	if err := bridge.CheckCallID(callID); err != nil {
		return nil, "", err
	}
	cb := map[string]any{
		"provider":    string(p),
		"received_at": time.Now().UTC().Format(time.RFC3339Nano),
		"params":      params,
	}
	if ev := str(fields, "StreamEvent", "state", "Event", "event", "Status", "status"); ev != "" {
		cb["event"] = ev
	} else if ev := str(params, "event_type"); ev != "" {
		cb["event"] = ev
	}
	if id := str(fields, "StreamSid", "StreamID", "StreamId", "stream_id", "streamId", "control_id"); id != "" {
		cb["stream_id"] = id
	}
	if e := str(fields, "StreamError", "Error", "error"); e != "" {
		cb["error"] = e
	}
	return cb, callID, nil
}
