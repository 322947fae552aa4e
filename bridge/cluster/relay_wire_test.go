package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRelayWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		track string
		m     media
	}{
		{"inbound with chunk and timestamp", "inbound", media{flags: flagChunk | flagTs, chunk: 42, ts: 1_764_900_000_020, payload: []byte{1, 2, 3}}},
		{"outbound, negative values", "outbound", media{flags: flagTs, chunk: -1, ts: -20, payload: []byte{0xff}}},
		{"no track, empty payload", "", media{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.flags |= trackFlags(tc.track)
			b := appendMedia(appendHead(nil, kindMedia, "id-1"), tc.m)
			kind, id, rest, err := parseHead(b)
			require.NoError(t, err)
			require.Equal(t, byte(kindMedia), kind)
			require.Equal(t, "id-1", string(id))
			got, err := parseMedia(rest)
			require.NoError(t, err)
			require.Equal(t, tc.track, trackOf(got.flags))
			if len(tc.m.payload) == 0 {
				got.payload = nil
			}
			require.Equal(t, tc.m, got)
		})
	}
}

func TestRelayWireMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty": nil, "kind only": {kindMedia}, "empty id": {kindMedia, 0}, "id past the end": {kindMedia, 9, 'a'},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := parseHead(b)
			require.ErrorIs(t, err, errMalformed)
		})
	}
	_, err := parseMedia(make([]byte, 16))
	require.ErrorIs(t, err, errMalformed, "shorter than flags, chunk and timestamp")
	require.ErrorIs(t, parseReply(nil), errMalformed)
	require.ErrorIs(t, parseReply([]byte{replyRefus, 5, 'a'}), errMalformed)
	require.NoError(t, parseReply([]byte{replyOK}))
}

// FuzzRelayWire: no message, however malformed, crashes the parsers.
func FuzzRelayWire(f *testing.F) {
	f.Add(appendMedia(appendHead(nil, kindMedia, "x"), media{flags: flagChunk, chunk: 1, payload: []byte{1}}))
	f.Add([]byte{kindBegin, 1, 'x', 3, 'a', 'b'})
	f.Add([]byte{replyRefus, 3, 'a', 'b', 'c', 'd'})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseReply(b)
		if _, _, rest, err := parseHead(b); err == nil {
			_, _ = parseMedia(rest)
			_, _, _ = readStr(rest)
		}
	})
}
