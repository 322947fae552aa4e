package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/callcaptions/bridge/config"
)

// maxTokenFile bounds what is read from the token file.
const maxTokenFile = 4 << 10

// tokenPath is the file that keeps the API token generated when none is
// configured, so that a restart keeps it and the tools on the same machine
// find it.
func tokenPath(data string) string { return filepath.Join(data, "api-token") }

// ensureAPIToken returns the token kept in <data>/api-token, creating the
// file (32 random bytes in hex, mode 0600, written atomically) when it
// is absent. A file that others may read, or that holds no token, is an
// error naming the fix: the bridge never serves with a token that may have
// leaked, and never silently replaces one that links and tools still use.
func ensureAPIToken(data string) (tok string, created bool, err error) {
	path := tokenPath(data)
	tok, err = readTokenFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		return "", false, fmt.Errorf("create the data directory for the API token: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("generate an API token: %w", err)
	}
	// Hex: never starts with "-", so it is safe on any command line.
	tok = hex.EncodeToString(b)
	tmp, err := os.CreateTemp(data, ".api-token-*") // mode 0600
	if err != nil {
		return "", false, fmt.Errorf("write the API token: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(tok + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", false, fmt.Errorf("write the API token to %s: %w", tmp.Name(), werr)
	}
	// A link, not a rename: when two processes start on one data
	// directory at once, the first token stays and both use it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			tok, err = readTokenFile(path)
			return tok, false, err
		}
		if err := os.Rename(tmp.Name(), path); err != nil { // file systems without hard links
			return "", false, fmt.Errorf("write the API token to %s: %w", path, err)
		}
	}
	if d, err := os.Open(data); err == nil {
		_ = d.Sync() // the new name survives a crash
		d.Close()
	}
	return tok, true, nil
}

// readTokenFile reads a token file, checking its permissions and content.
// A missing file gives an error that is fs.ErrNotExist.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("API token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("API token file %s is not a regular file: remove it to have a token generated, or set --api-token", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("API token file %s may be read by others (mode %04o): run `chmod 600 %s`, or delete it to have a new token generated", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("read the API token file %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(b) > maxTokenFile || !validToken(tok) {
		return "", fmt.Errorf("API token file %s does not hold a token (one line of 16 to 512 characters from A-Z a-z 0-9 - _ . ~): delete it to have a new one generated, or set --api-token", path)
	}
	return tok, nil
}

// validToken: what a token file may hold. A token written by hand (say,
// copied from a secret store) is accepted if it is long enough and needs
// no escaping in a URL.
func validToken(tok string) bool {
	return len(tok) >= config.MinSecretLen && len(tok) <= 512 && strings.Trim(tok, config.Unreserved) == ""
}

// findAPIToken is the token a tool on this machine sends to the bridge:
// --api-token (BRIDGE_API_TOKEN) when set, else the one the bridge keeps
// in <--data>/api-token. No file: "" (the bridge may allow anonymous
// access); a file that cannot be used is an error.
func findAPIToken(cfg config.Config) (string, error) {
	if cfg.APIToken != "" {
		return cfg.APIToken, nil
	}
	tok, err := readTokenFile(tokenPath(cfg.Data))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return tok, err
}
