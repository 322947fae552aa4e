// Command testjson reads `go test -json` on stdin and prints what go test
// would have printed without -json: the build errors, the output of every
// failing test, and each package's closing lines (ok, FAIL, ---). It then
// lists every skipped test and, when CI is set, exits non-zero if there
// was one, so that a test that quietly stops running fails CI.
//
// Usage: go test -json ./... | go run .ci/testjson/main.go
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one line of test2json output.
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail events
}

func main() {
	skipped, failed, err := filter(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testjson:", err)
		os.Exit(2)
	}
	if len(skipped) > 0 {
		fmt.Printf("\n%d skipped test(s):\n", len(skipped))
		for _, s := range skipped {
			fmt.Println("  " + s)
		}
		if os.Getenv("CI") != "" {
			fmt.Println("FAIL: CI is set and a test was skipped; CI runs every test (install what it needs in .ci/run)")
			os.Exit(1)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// filter copies the output a plain `go test` would show from r to w and
// returns the skipped tests ("package TestName" and the reason given), and whether anything
// failed. Lines that are not JSON (go vet, a crash of go test itself) are
// copied as they are.
func filter(r io.Reader, w io.Writer) (skipped []string, failed bool, err error) {
	// Output of each running test, kept until it passes (dropped) or fails
	// (printed). Bounded by what the tests print.
	pending := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := ev.Package + " " + ev.Test
		switch {
		case ev.Action == "build-output":
			fmt.Fprint(w, ev.Output)
		case ev.Action == "build-fail":
			failed = true
		case ev.Test == "" && ev.Action == "output":
			// The package's own lines: "ok", "FAIL", "PASS", panics and
			// TestMain output.
			fmt.Fprint(w, ev.Output)
		case ev.Test == "" && ev.Action == "fail":
			failed = true
		case ev.Test == "":
			// The package's start, pass, or skip ("no test files").
		case ev.Action == "output":
			pending[key] = append(pending[key], ev.Output)
		case ev.Action == "pass":
			delete(pending, key)
		case ev.Action == "skip":
			why := key
			for _, o := range pending[key] {
				if o = strings.TrimSpace(o); o != "" && !strings.HasPrefix(o, "=== ") && !strings.HasPrefix(o, "--- SKIP") {
					why += "\n      " + o
				}
			}
			skipped = append(skipped, why)
			delete(pending, key)
		case ev.Action == "fail":
			failed = true
			for _, o := range pending[key] {
				fmt.Fprint(w, o)
			}
			delete(pending, key)
		}
	}
	if err := sc.Err(); err != nil {
		return skipped, true, err
	}
	// A test still running when the stream ended (a timeout or a crash
	// killed the binary): show what it printed.
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(pending[k]) > 0 {
			fmt.Fprintf(w, "output of %s, which did not finish:\n%s", strings.TrimSpace(k), strings.Join(pending[k], ""))
		}
	}
	return skipped, failed, nil
}
