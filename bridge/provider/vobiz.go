package provider

import "github.com/valyala/fastjson"

// Vobiz streams Plivo's protocol (the same parser, plivoStart) with
// big-endian L16, all-digit account ids, a sequence that starts at 0 and
// extra_headers as a JSON object.
const Vobiz Name = "vobiz"

var vobiz = &Dialect{
	Name: Vobiz, Order: BigEndian,
	CallbackFields: plivoCallbackFields,
	Markup:         []Markup{{Kind: "vobiz", Build: plivoXML(false)}},
	Wire: &Wire{
		Stereo: true, Encodings: []Encoding{PCMU, L16}, L16Rates: []int{8000, 16000, 24000}, FrameMs: 20,
		EpochTimestamps: true, FirstSeq: 1,
		ids:   func() IDs { return IDs{Call: randUUID(), Stream: randUUID(), Account: "500025"} },
		start: plivoStart(true),
		media: plivoMedia,
	},
}

// plivoOrVobiz tells the two apart by accountId, else by the first
// sequenceNumber (Detector's doc gives the evidence).
func plivoOrVobiz(st, v *fastjson.Value) (Name, string) {
	acct := field(st, "accountId")
	if acct == nil {
		acct = field(v, "accountId")
	}
	a, _ := text(acct)
	switch {
	case isPlivoAuthID(a):
		return Plivo, ""
	case every(a, isDigit): // Vobiz account ids are all digits ("500025" in its docs)
		return Vobiz, ""
	}
	seq, has, ok := flexInt(field(v, "sequenceNumber", "sequence_number"))
	switch {
	case ok && has && seq == 0:
		return Vobiz, ""
	case ok && has && seq == 1:
		return Plivo, ""
	}
	return "", "Plivo or Vobiz? use /media/plivo or /media/vobiz (accountId and first sequenceNumber do not tell)"
}
