package provider

import (
	"encoding/json"
	"encoding/xml"
	"strings"
)

// StreamRequest is what stream instructions are made from: the media
// socket to stream to and how, already checked by the caller.
type StreamRequest struct {
	Mode     string      // "start" or "connect" (a bidirectional stream)
	Dial     string      // E.164 number or sip: URI to connect the caller on to, or ""
	Hold     int         // seconds to hold the call open when Dial is ""
	Codec    string      // SignalWire's codec, or ""
	Params   [][2]string // custom parameters, in a stable order
	CallID   string      // Vonage: the call's uuid, carried to the socket
	Media    string      // wss:// URL of the media socket, with its path secret if any
	Bearer   string      // token the provider sends as Authorization: Bearer
	Callback string      // status callback URL, "" when callbacks could not authenticate
	Scheme   string      // how the media socket authenticates
	YAML     bool        // SWML as YAML rather than JSON
}

// Markup is one kind of stream instructions: the document a provider's
// voice webhook answers with to stream the call to the bridge.
type Markup struct {
	// Kind names it in /instructions/<kind>.
	Kind string
	// Connect: the markup can start a bidirectional stream (mode=connect).
	Connect bool
	// Codec: the markup can choose the codec (codec=).
	Codec bool
	// Build renders the document. It is pure: values in, bytes out.
	Build func(StreamRequest) (body []byte, contentType string, err error)
}

// MarkupFor returns the markup of /instructions/<kind> and its dialect,
// or nils for a kind no dialect answers.
func MarkupFor(kind string) (*Dialect, *Markup) {
	for _, d := range dialects {
		for i := range d.Markup {
			if d.Markup[i].Kind == kind {
				return d, &d.Markup[i]
			}
		}
	}
	return nil, nil
}

// Content types of the markup.
const (
	contentXML  = "text/xml; charset=utf-8"
	contentJSON = "application/json"
	contentYAML = "application/yaml; charset=utf-8"
)

// xmlResponse is the <Response> of the XML dialects, marshalled with
// encoding/xml so that every value is escaped.
type xmlResponse struct {
	XMLName xml.Name `xml:"Response"`
	Verbs   []any
}

type xmlPause struct {
	XMLName xml.Name
	Length  int `xml:"length,attr"`
}

type xmlDial struct {
	XMLName xml.Name `xml:"Dial"`
	Number  string   `xml:"Number,omitempty"`
	SIP     string   `xml:"Sip,omitempty"`
	User    string   `xml:"User,omitempty"`
}

// hold appends what keeps the call open after the stream starts: a pause
// (pause names the verb) or a dial to req.Dial (sip names the element for
// a SIP address).
func (r *xmlResponse) hold(req StreamRequest, pause string, sip func(string) xmlDial) {
	switch {
	case req.Dial == "":
		r.Verbs = append(r.Verbs, xmlPause{XMLName: xml.Name{Local: pause}, Length: req.Hold})
	case strings.HasPrefix(req.Dial, "sip"):
		r.Verbs = append(r.Verbs, sip(req.Dial))
	default:
		r.Verbs = append(r.Verbs, xmlDial{Number: req.Dial})
	}
}

func marshalXML(v any) ([]byte, string, error) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, "", err
	}
	return append([]byte(xml.Header), append(b, '\n')...), contentXML, nil
}

func marshalJSON(v any) ([]byte, string, error) {
	b, err := json.Marshal(v)
	return b, contentJSON, err
}
