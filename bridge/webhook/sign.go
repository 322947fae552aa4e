package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Standard Webhooks 1.0 signing. A delivery carries three headers:
//
//	webhook-id:        msg_…       the event's id, the same on every retry
//	webhook-timestamp: 1764979200  unix seconds of this attempt
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>
//
// The key is the base64 part of the secret after "whsec_".

// SecretPrefix starts every secret.
const SecretPrefix = "whsec_"

// Key sizes. Standard Webhooks recommends keys of 24 to 64 random bytes;
// a shorter key is accepted (a receiver may have been set up with one) and
// logged as weak at start-up, and a key longer than MaxKeyBytes is refused
// as a mistake (a file pasted in place of a secret).
const (
	RecommendedKeyBytes = 24
	MaxKeyBytes         = 1024
)

// ErrSecret is returned for a secret that is not whsec_<base64 key>.
var ErrSecret = errors.New("webhook secret must be whsec_<base64 key>, the key 24 to 64 random bytes (make one: echo whsec_$(head -c 32 /dev/urandom | base64))")

// ParseSecret returns the HMAC key of a whsec_ secret. The base64 may be
// padded or not.
func ParseSecret(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: no %s prefix", ErrSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return nil, fmt.Errorf("%w: the part after %s is not standard base64", ErrSecret, SecretPrefix)
		}
	}
	if len(key) == 0 || len(key) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: the key is %d bytes", ErrSecret, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature header value of one attempt.
func Sign(key []byte, id string, unix int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
