package web

import "github.com/callcaptions/bridge/bridge"

// Events reach the hub encoded by bridge (bridge.Event.Data, the same bytes
// for every publisher); the hub wraps each once in a message that the
// replay log and every outbox share, and encodes only what it makes
// itself: replay.truncated.

// segKey identifies a transcript segment across calls.
type segKey struct{ call, segment string }

// message is one encoded event, shared read-only by the replay log and every
// outbox it reaches.
type message struct {
	data []byte
	seq  uint64
	kind bridge.Kind
	seg  segKey // set for partials and finals that name a segment
}

func newMessage(ev bridge.Event) *message {
	m := &message{data: ev.Data, seq: ev.Seq, kind: ev.Kind}
	if ev.Segment != "" {
		m.seg = segKey{call: ev.CallID, segment: ev.Segment}
	}
	return m
}

// TypeReplayTruncated tells a subscriber that its replay misses events the
// replay log no longer holds (MaxReplayBytes). Its seq is that of the
// newest event missed, so every event that follows has a higher one and
// resuming after it misses nothing more; dropped is how many events the
// call's replay log has dropped in all. The REST transcript has them.
const TypeReplayTruncated = "replay.truncated"

// truncatedMessage is replay.truncated for a replay that misses events up
// to seq through, dropped in all.
func truncatedMessage(callID string, through, dropped uint64) *message {
	data, _ := bridge.Encode(TypeReplayTruncated, callID, through, struct {
		Dropped uint64 `json:"dropped"`
	}{dropped}) // a struct of a number always encodes
	return &message{data: data, seq: through}
}
