package web

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/callcaptions/bridge/bridge"
)

// Caption formats served beside transcript.json: one cue per final, in time
// order, labelled by track (Config.InboundLabel, Config.OutboundLabel, or
// the track name for any other track).
//
//	GET /api/calls/:id/transcript.vtt   WebVTT; the label is a voice span: <v Caller>hello
//	GET /api/calls/:id/transcript.srt   SubRip; the label leads the text:  Caller: hello
//
// Both are UTF-8 and served as attachments named after the call.

// captionFormat is one way of writing cues.
type captionFormat struct {
	ext, contentType string
	write            func(buf *bytes.Buffer, cues []cue)
}

var (
	formatVTT = captionFormat{ext: "vtt", contentType: "text/vtt; charset=utf-8", write: writeVTT}
	formatSRT = captionFormat{ext: "srt", contentType: "application/x-subrip; charset=utf-8", write: writeSRT}
)

// cue is one caption: a final on the call clock with its speaker's label.
type cue struct {
	startMs, endMs int64
	label, text    string
}

// minCueMs is the length given to a final whose end is not after its start,
// so that players show it at all (both formats need end > start).
const minCueMs = 1000

// cuesOf orders the finals by start (then track, then arrival) and labels
// them.
func cuesOf(segs []bridge.Segment, label func(track string) string) []cue {
	sorted := slices.Clone(segs)
	slices.SortStableFunc(sorted, func(a, b bridge.Segment) int {
		return cmp.Or(cmp.Compare(a.StartMs, b.StartMs), cmp.Compare(a.Track, b.Track))
	})
	out := make([]cue, 0, len(sorted))
	for _, s := range sorted {
		text := oneLine(s.Text)
		if text == "" {
			continue
		}
		start, end := max(s.StartMs, 0), s.EndMs
		if end <= start {
			end = start + minCueMs
		}
		out = append(out, cue{startMs: start, endMs: end, label: oneLine(label(s.Track)), text: text})
	}
	return out
}

// oneLine makes text safe for a cue: valid UTF-8, no line breaks (a blank
// line ends a cue in both formats), no surrounding space.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Join(strings.Fields(s), " ")
}

// trackLabel names a track for people.
func (s *Server) trackLabel(track string) string {
	switch track {
	case "inbound":
		return s.cfg.InboundLabel
	case "outbound":
		return s.cfg.OutboundLabel
	}
	return track
}

// writeVTT writes a WebVTT file (W3C WebVTT: header, blank line, cues of
// "HH:MM:SS.mmm --> HH:MM:SS.mmm" and text). Cue text may hold tags, so
// &, < and > in the transcript are escaped.
func writeVTT(buf *bytes.Buffer, cues []cue) {
	buf.WriteString("WEBVTT\n")
	for i, c := range cues {
		text := vttEscaper.Replace(c.text)
		if c.label != "" {
			text = "<v " + vttEscaper.Replace(c.label) + ">" + text
		}
		fmt.Fprintf(buf, "\n%d\n%s --> %s\n%s\n", i+1, clock(c.startMs, '.'), clock(c.endMs, '.'), text)
	}
}

var vttEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// writeSRT writes a SubRip file: numbered cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm",
// the text, a blank line.
func writeSRT(buf *bytes.Buffer, cues []cue) {
	for i, c := range cues {
		if i > 0 {
			buf.WriteString("\n")
		}
		text := c.text
		if c.label != "" {
			text = c.label + ": " + text
		}
		fmt.Fprintf(buf, "%d\n%s --> %s\n%s\n", i+1, clock(c.startMs, ','), clock(c.endMs, ','), text)
	}
}

// clock formats milliseconds as HH:MM:SS<sep>mmm (hours grow past two
// digits when they must).
func clock(ms int64, sep byte) string {
	ms = max(ms, 0)
	h, ms := ms/3_600_000, ms%3_600_000
	m, ms := ms/60_000, ms%60_000
	s, ms := ms/1000, ms%1000
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", h, m, s, sep, ms)
}

// attachmentName is a file name for a download of call id: only
// [A-Za-z0-9._-] survive, so that no header or path tricks ride along.
func attachmentName(id, ext string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	name := strings.TrimLeft(b.String(), ".")
	if name == "" {
		name = "call"
	}
	return name + "." + ext
}

// serveCaptions serves the :id call's transcript in format f.
func (s *Server) serveCaptions(f captionFormat) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t, id, err := s.transcript(c)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		f.write(&buf, cuesOf(t.Segments, s.trackLabel))
		c.Set(fiber.HeaderContentType, f.contentType)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+attachmentName(id, f.ext)+`"`)
		return c.Send(buf.Bytes())
	}
}
