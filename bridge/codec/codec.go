// Package codec converts telephony audio to and from the bridge's one internal
// format: signed 16-bit little-endian PCM, mono, as bytes.
//
// Every function is pure: bytes in, bytes out, into a buffer the caller owns.
// Nothing here allocates, logs or keeps state beyond the read-only lookup
// tables built at start-up, so the functions are safe for concurrent use and
// cheap enough to call on every 20 ms frame.
//
// Output size rules, shared by all decoders and encoders: they convert as many
// whole input units as fit in dst and return the number of bytes written. A
// G.711 byte becomes one 2-byte sample, so len(dst) >= 2*len(src) decodes all
// of src; an L16 sample is 2 bytes both ways and a trailing odd byte is
// ignored.
package codec
