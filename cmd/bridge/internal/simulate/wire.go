package simulate

import (
	"encoding/base64"

	"github.com/callcaptions/bridge/bridge/provider"
)

// simDialectNames are the providers the simulator can play (those with a
// frame writer), for help and errors.
func simDialectNames() []string {
	var out []string
	for _, n := range provider.Names {
		if provider.Lookup(n).Wire != nil {
			out = append(out, string(n))
		}
	}
	return out
}

// twilioSignature is X-Twilio-Signature for a WebSocket upgrade: the
// base64 HMAC-SHA1 of the wss:// URL, keyed with the account's auth token
// (a GET has no parameters to append).
func twilioSignature(authToken, wssURL string) string {
	return base64.StdEncoding.EncodeToString(provider.TwilioMAC(authToken, wssURL, nil))
}
