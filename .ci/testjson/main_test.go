package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	const stream = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestPass"}
{"Action":"output","Package":"p","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"p","Test":"TestPass","Output":"    quiet\n"}
{"Action":"pass","Package":"p","Test":"TestPass"}
{"Action":"run","Package":"p","Test":"TestSkip"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"    a_test.go:3: no browser\n"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestSkip"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
{"Action":"output","Package":"q","Output":"?   \tq\t[no test files]\n"}
{"Action":"skip","Package":"q"}
not json at all
`
	var out bytes.Buffer
	skipped, failed, err := filter(strings.NewReader(stream), &out)
	if err != nil || failed {
		t.Fatalf("failed %v, err %v", failed, err)
	}
	if want := []string{"p TestSkip\n      a_test.go:3: no browser"}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped %q, want %q", skipped, want)
	}
	if want := "PASS\nok  \tp\t0.01s\n?   \tq\t[no test files]\nnot json at all\n"; out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}

	const failing = `{"Action":"output","Package":"p","Test":"TestFail","Output":"    boom\n"}
{"Action":"output","Package":"p","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestFail"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.01s\n"}
{"Action":"fail","Package":"p"}
{"Action":"build-output","ImportPath":"r [r.test]","Output":"./r.go:1: undefined: x\n"}
{"Action":"build-fail","ImportPath":"r [r.test]"}
{"Action":"output","Package":"s","Test":"TestHang","Output":"panic: test timed out after 15m0s\n"}
`
	out.Reset()
	skipped, failed, err = filter(strings.NewReader(failing), &out)
	if err != nil || !failed || len(skipped) != 0 {
		t.Fatalf("failed %v, skipped %q, err %v", failed, skipped, err)
	}
	for _, want := range []string{"    boom\n--- FAIL: TestFail", "FAIL\tp", "./r.go:1: undefined: x", "output of s TestHang, which did not finish:\npanic: test timed out"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
