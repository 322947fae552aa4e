package recorder

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A journal append cut short by the file system (here the file size limit,
// which fails a write part-way) leaves the journal as it was, so that the
// caller can append the same lines again without a torn one between.
// Not parallel: the limit is the process's.
func TestJournalAppendAllOrNothing(t *testing.T) {
	s, err := NewStore(t.TempDir())
	require.NoError(t, err)
	c, err := s.Open("CA1")
	require.NoError(t, err)
	type line struct{ Text string }
	require.NoError(t, c.AppendJSON("t.jsonl", line{"first"}))
	path := filepath.Join(c.Dir(), "t.jsonl")
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old))
	limit := old
	limit.Cur = uint64(len(before) + 8)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit))
	err = c.AppendJSON("t.jsonl", line{strings.Repeat("x", 100)})
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old))
	require.ErrorIs(t, err, syscall.EFBIG)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(before), string(after), "nothing of the failed append is left")

	require.NoError(t, c.AppendJSON("t.jsonl", line{strings.Repeat("x", 100)}))
	var got []string
	require.NoError(t, s.ReadJSONLines("CA1", "t.jsonl", func(b []byte) error {
		got = append(got, string(b))
		return nil
	}))
	require.Equal(t, []string{`{"Text":"first"}`, `{"Text":"` + strings.Repeat("x", 100) + `"}`}, got)
}
