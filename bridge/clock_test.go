package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMediaClock(t *testing.T) {
	const n = 160 // 20 ms at 8 kHz
	type frame struct {
		at, chunk       int64
		hasAt, hasChunk bool
	}
	ts := func(ms, chunk int64) frame { return frame{at: ms * 8, chunk: chunk, hasAt: true, hasChunk: true} }
	cases := []struct {
		name   string
		maxGap int64
		first  int64
		frames []frame
		want   []placement
	}{
		{"contiguous", 80000, 0, []frame{ts(0, 1), ts(20, 2), ts(40, 3)},
			[]placement{{pos: 0}, {pos: 160}, {pos: 320}}},
		{"first frame later than t=0 is padded", 80000, 0, []frame{ts(100, 1), ts(120, 2)},
			[]placement{{pos: 800, gap: 800}, {pos: 960}}},
		{"jitter within half a frame is absorbed", 80000, 0, []frame{ts(0, 1), ts(29, 2), ts(38, 3)},
			[]placement{{pos: 0}, {pos: 160}, {pos: 320}}},
		{"a dropped frame is a gap", 80000, 0, []frame{ts(0, 1), ts(40, 3), ts(60, 4)},
			[]placement{{pos: 0}, {pos: 320, gap: 160}, {pos: 480}}},
		{"a repeated chunk is a duplicate", 80000, 0, []frame{ts(0, 1), ts(20, 2), ts(20, 2), ts(40, 3)},
			[]placement{{pos: 0}, {pos: 160}, {drop: true}, {pos: 320}}},
		{"an old chunk arriving late is dropped", 80000, 0, []frame{ts(0, 1), ts(40, 3), ts(20, 2)},
			[]placement{{pos: 0}, {pos: 320, gap: 160}, {drop: true}}},
		{"the next chunk never leaves a gap whatever its timestamp", 80000, 0, []frame{ts(0, 1), ts(45, 2)},
			[]placement{{pos: 0}, {pos: 160}}},
		{"chunks alone place gaps", 80000, 0, []frame{{chunk: 1, hasChunk: true}, {chunk: 4, hasChunk: true}},
			[]placement{{pos: 0}, {pos: 480, gap: 320}}},
		{"nothing to go by: contiguous from the anchor", 80000, 4000, []frame{{}, {}},
			[]placement{{pos: 4000, gap: 4000}, {pos: 4160}}},
		{"timestamps alone: a duplicate timestamp is dropped", 80000, 0, []frame{{at: 0, hasAt: true}, {at: 0, hasAt: true}, {at: 160, hasAt: true}},
			[]placement{{pos: 0}, {drop: true}, {pos: 160}}},
		{"a gap over the cap is filled up to the cap and the rest skipped", 800, 0, []frame{ts(0, 1), ts(1000, 51), ts(1020, 52)},
			[]placement{{pos: 0}, {pos: 960, gap: 800, skipped: 7040}, {pos: 1120}}},
		{"negative anchors clamp to zero", 80000, -50, []frame{{}},
			[]placement{{pos: 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mediaClock{rate: 8000, maxGap: tc.maxGap}
			var got []placement
			for _, f := range tc.frames {
				got = append(got, c.place(n, f.at, f.hasAt, f.chunk, f.hasChunk, tc.first))
			}
			require.Equal(t, tc.want, got)
		})
	}
}
