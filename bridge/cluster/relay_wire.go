package cluster

import (
	"encoding/binary"
	"errors"
)

// Relay messages are core NATS messages on RelaySubject(node) of the node
// they go to. Every one starts with a kind byte and the relayed stream's
// id (chosen by the relaying replica, unique there):
//
//	+------+-------+--------+----------------------------------------------+
//	| kind | idLen | id     | rest, by kind                                |
//	|  1 B |  1 B  | idLen  |                                              |
//	+------+-------+--------+----------------------------------------------+
//	 'B' begin (a request; to the owner): relayLen(1) relay node, then the
//	     provider name len(1) + name, then the provider.Start as JSON.
//	     The reply is 'O' (joined) or 'R' reasonLen(1) reason message.
//	 'M' media (to the owner): flags(1: 1 chunk, 2 timestamp, 4
//	     outbound, 8 inbound) chunk(8) timestamp(8) payload…
//	 'D' dtmf (to the owner): flags(1) timestamp(8) duration(8) digit…
//	 'E' end (to the owner): reasonLen(1) reason, error text…
//	 'S' stopped by the owner (to the relay): reason…
//
// Integers are big-endian. A malformed message is dropped and counted.
const (
	kindBegin  = 'B'
	kindMedia  = 'M'
	kindDTMF   = 'D'
	kindEnd    = 'E'
	kindStop   = 'S'
	replyOK    = 'O'
	replyRefus = 'R'
)

const (
	flagChunk    = 1
	flagTs       = 2
	flagOutbound = 4
	flagInbound  = 8
)

var errMalformed = errors.New("malformed relay message")

// appendHead appends a message's kind and id.
func appendHead(b []byte, kind byte, id string) []byte {
	b = append(b, kind, byte(len(id)))
	return append(b, id...)
}

// appendStr appends a string of at most 255 bytes with its length.
func appendStr(b []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// readStr reads a length-prefixed string's bytes.
func readStr(b []byte) (s, rest []byte, err error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return nil, nil, errMalformed
	}
	n := int(b[0])
	return b[1 : 1+n], b[1+n:], nil
}

// parseHead splits a message into its kind, id and the rest.
func parseHead(b []byte) (kind byte, id, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errMalformed
	}
	id, rest, err = readStr(b[1:])
	if err != nil || len(id) == 0 {
		return 0, nil, nil, errMalformed
	}
	return b[0], id, rest, nil
}

// media is a relayed media or DTMF frame's fields.
type media struct {
	flags   byte
	chunk   int64
	ts      int64
	payload []byte // media: the audio; dtmf: the digit
}

func appendMedia(b []byte, m media) []byte {
	b = append(b, m.flags)
	b = binary.BigEndian.AppendUint64(b, uint64(m.chunk))
	b = binary.BigEndian.AppendUint64(b, uint64(m.ts))
	return append(b, m.payload...)
}

func parseMedia(b []byte) (media, error) {
	if len(b) < 17 {
		return media{}, errMalformed
	}
	return media{flags: b[0], chunk: int64(binary.BigEndian.Uint64(b[1:])), ts: int64(binary.BigEndian.Uint64(b[9:])), payload: b[17:]}, nil
}

// trackFlags and trackOf carry the two track names as flags, so a
// relayed frame costs the owner no string.
func trackFlags(track string) byte {
	switch track {
	case "outbound":
		return flagOutbound
	case "inbound":
		return flagInbound
	}
	return 0
}

func trackOf(flags byte) string {
	switch {
	case flags&flagOutbound != 0:
		return "outbound"
	case flags&flagInbound != 0:
		return "inbound"
	}
	return ""
}
