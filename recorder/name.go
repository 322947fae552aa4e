package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Call ids come from providers and, through the generic media endpoint, from
// whoever opens a socket, so they are never trusted as path elements. A safe
// id is its own folder name, which keeps folders readable for the ids real
// providers issue (Twilio "CA…", Plivo and SignalWire UUIDs). Anything else
// is mapped to
//
//	<sanitised prefix>--<32 hex digits of SHA-256 of the id>
//
// The prefix keeps the folder recognisable; the hash makes the name unique.
// A safe id that already has that shape is hashed too, so a caller choosing
// its own id can never land in the folder of another call: names of the
// hashed shape only ever come from the hash.
const (
	maxNameLen   = 128
	hashHexLen   = 32 // 128 bits: collisions need a deliberate SHA-256 break
	hashSep      = "--"
	maxPrefixLen = 64
	hashedSuffix = len(hashSep) + hashHexLen
)

// isSafeName reports whether s can be used as a file name as it is:
// 1 to 128 characters from [A-Za-z0-9._-], not starting with a dot (which
// also rules out "." and "..").
func isSafeName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isSafeByte(s[i]) {
			return false
		}
	}
	return true
}

func isSafeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// looksHashed reports whether s has the shape of a mapped name.
func looksHashed(s string) bool {
	return len(s) >= hashedSuffix && s[len(s)-hashedSuffix:len(s)-hashHexLen] == hashSep &&
		strings.Trim(s[len(s)-hashHexLen:], "0123456789abcdef") == ""
}

// dirName maps a call id to its folder name: the id itself when it is safe,
// otherwise a safe, deterministic name derived from it.
func dirName(callID string) string {
	if isSafeName(callID) && !looksHashed(callID) {
		return callID
	}
	var prefix [maxPrefixLen]byte
	n := 0
	for i := 0; i < len(callID) && n < maxPrefixLen; i++ {
		c := callID[i]
		if n == 0 && c == '.' {
			// A leading dot would hide the folder (or be "." or ".."); the
			// hash carries the identity, so the prefix can simply drop it.
			continue
		}
		if !isSafeByte(c) {
			c = '_'
		}
		// Collapse runs of replacements so "a/../b" reads "a_b", not "a____b".
		if c == '_' && n > 0 && prefix[n-1] == '_' && !isSafeByte(callID[i]) {
			continue
		}
		prefix[n] = c
		n++
	}
	p := string(prefix[:n])
	if p == "" {
		p = "call"
	}
	sum := sha256.Sum256([]byte(callID))
	return p + hashSep + hex.EncodeToString(sum[:hashHexLen/2])
}

// FolderName is the name of the call's folder under calls/ (see Store.Dir).
// A store that keeps the same layout elsewhere (an object store) names the
// call by it too, so a call has one name wherever it is kept.
func FolderName(callID string) string { return dirName(callID) }

// IsFolderName reports whether name can be a call folder's name: a safe
// file name. What is listed from elsewhere is checked with it before it is
// used as a path.
func IsFolderName(name string) bool { return isSafeName(name) }
