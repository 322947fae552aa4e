package recorder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJournal(t *testing.T) {
	s, err := NewStore(t.TempDir())
	require.NoError(t, err)
	c, err := s.Open("../odd id")
	require.NoError(t, err)

	type line struct{ N int }
	read := func() []line {
		var out []line
		require.NoError(t, s.ReadJSONLines("../odd id", "t.jsonl", func(b []byte) error {
			var l line
			require.NoError(t, json.Unmarshal(b, &l))
			out = append(out, l)
			return nil
		}))
		return out
	}
	require.Empty(t, read(), "a missing journal reads as empty")
	require.NoError(t, c.AppendJSON("t.jsonl", line{1}, line{2}))
	require.NoError(t, c.AppendJSON("t.jsonl", line{3}))
	require.Equal(t, []line{{1}, {2}, {3}}, read())

	// What a crash in the middle of a write leaves: a last line without its newline.
	f, err := os.OpenFile(filepath.Join(c.Dir(), "t.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"N":4`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, []line{{1}, {2}, {3}}, read(), "a cut line is skipped")

	require.ErrorContains(t, c.AppendJSON("../x.jsonl", line{1}), "invalid journal name")
	require.ErrorContains(t, c.AppendJSON("call.json", line{1}), "invalid journal name")
	require.NoError(t, c.Remove("t.jsonl"))
	require.NoError(t, c.Remove("t.jsonl"), "removing a missing journal is fine")
	require.Empty(t, read())
}
