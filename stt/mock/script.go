package mock

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Track prefixes a script line may start with.
const (
	trackInbound  = "inbound"
	trackOutbound = "outbound"
)

// scriptLine is one line of a script, split into words once so that streams
// only slice it.
type scriptLine struct {
	track string // "" when shared by every track
	words []string
}

// LoadScript reads a script file for Config.Script: one line of text per
// utterance, optionally prefixed "inbound:" or "outbound:". Blank lines and
// lines starting with "#" are skipped.
func LoadScript(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load mock script: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load mock script %s: %w", path, err)
	}
	return lines, nil
}

// parseLines splits script lines into words and track prefixes. Lines with
// no words are dropped: an utterance cannot be given empty text.
func parseLines(raw []string) []scriptLine {
	var out []scriptLine
	for _, line := range raw {
		line = strings.TrimSpace(line)
		track := ""
		for _, t := range []string{trackInbound, trackOutbound} {
			if rest, ok := strings.CutPrefix(line, t+":"); ok {
				track, line = t, rest
				break
			}
		}
		words := strings.Fields(line)
		if len(words) == 0 {
			continue
		}
		out = append(out, scriptLine{track: track, words: words})
	}
	return out
}

// linesFor returns the words of the lines that track takes, in order.
func linesFor(lines []scriptLine, track string) [][]string {
	var out [][]string
	for _, l := range lines {
		if l.track == "" || l.track == track {
			out = append(out, l.words)
		}
	}
	return out
}
