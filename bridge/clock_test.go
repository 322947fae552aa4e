package bridge

import (
	"cmp"
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
	at := func(ms int64) frame { return frame{at: ms * 8, hasAt: true} }
	cases := []struct {
		name   string
		maxGap int64
		first  int64
		frames []frame
		want   []placement
		allow  int64 // silence allowed in all; 0: plenty
	}{
		{"contiguous", 80000, 0, []frame{ts(0, 1), ts(20, 2), ts(40, 3)},
			[]placement{{pos: 0}, {pos: 160}, {pos: 320}}, 0},
		{"first frame later than t=0 is padded", 80000, 0, []frame{ts(100, 1), ts(120, 2)},
			[]placement{{pos: 800, gap: 800}, {pos: 960}}, 0},
		{"jitter within half a frame is absorbed", 80000, 0, []frame{ts(0, 1), ts(29, 2), ts(38, 3)},
			[]placement{{pos: 0}, {pos: 160}, {pos: 320}}, 0},
		{"a dropped frame is a gap", 80000, 0, []frame{ts(0, 1), ts(40, 3), ts(60, 4)},
			[]placement{{pos: 0}, {pos: 320, gap: 160}, {pos: 480}}, 0},
		{"a repeated chunk is a duplicate", 80000, 0, []frame{ts(0, 1), ts(20, 2), ts(20, 2), ts(40, 3)},
			[]placement{{pos: 0}, {pos: 160}, {drop: true}, {pos: 320}}, 0},
		{"an old chunk arriving late is dropped", 80000, 0, []frame{ts(0, 1), ts(40, 3), ts(20, 2)},
			[]placement{{pos: 0}, {pos: 320, gap: 160}, {drop: true}}, 0},
		{"the next chunk never leaves a gap whatever its timestamp", 80000, 0, []frame{ts(0, 1), ts(45, 2)},
			[]placement{{pos: 0}, {pos: 160}}, 0},
		{"chunks alone place gaps", 80000, 0, []frame{{chunk: 1, hasChunk: true}, {chunk: 4, hasChunk: true}},
			[]placement{{pos: 0}, {pos: 480, gap: 320}}, 0},
		{"nothing to go by: contiguous from the anchor", 80000, 4000, []frame{{}, {}},
			[]placement{{pos: 4000, gap: 4000}, {pos: 4160}}, 0},
		{"timestamps alone: a duplicate timestamp is dropped", 80000, 0, []frame{{at: 0, hasAt: true}, {at: 0, hasAt: true}, {at: 160, hasAt: true}},
			[]placement{{pos: 0}, {drop: true}, {pos: 160}}, 0},
		{"a gap over the cap is filled up to the cap and the rest skipped", 800, 0, []frame{ts(0, 1), ts(1000, 51), ts(1020, 52)},
			[]placement{{pos: 0}, {pos: 960, gap: 800, skipped: 7040}, {pos: 1120}}, 0},
		{"negative anchors clamp to zero", 80000, -50, []frame{{}},
			[]placement{{pos: 0}}, 0},
		{"a late track is padded to its place even beyond the maximum gap", 800, 0, []frame{ts(1000, 1), ts(1020, 2)},
			[]placement{{pos: 8000, gap: 8000}, {pos: 8160}}, 0},
		{"a late track is padded no further than the allowance", 800, 0, []frame{ts(1000, 1), ts(1020, 2)},
			[]placement{{pos: 4000, gap: 4000, skipped: 4000}, {pos: 4160}}, 4000},
		{"jumps within the maximum gap stop filling at the allowance", 800, 0, []frame{at(0), at(110), at(220), at(330), at(440)},
			[]placement{{pos: 0}, {pos: 880, gap: 720}, {pos: 1320, gap: 280, skipped: 440}, {pos: 1480, skipped: 720}, {pos: 1640, skipped: 720}}, 1000},
		{"after the allowance, frames keep their distance to each other", 800, 0, []frame{at(0), at(110), at(130), at(150)},
			[]placement{{pos: 0}, {pos: 161, gap: 1, skipped: 719}, {pos: 321}, {pos: 481}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mediaClock{rate: 8000, maxGap: tc.maxGap}
			allow := func() int64 { return cmp.Or(tc.allow, 1<<40) }
			var got []placement
			for _, f := range tc.frames {
				got = append(got, c.place(n, f.at, f.hasAt, f.chunk, f.hasChunk, tc.first, allow))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestMediaClockReadsAllowanceOnlyForSilence: the allowance (which reads
// the wall clock) is asked only for frames that need silence, not for every
// frame.
func TestMediaClockReadsAllowanceOnlyForSilence(t *testing.T) {
	c := mediaClock{rate: 8000, maxGap: 80000}
	asked := 0
	allow := func() int64 { asked++; return 1 << 40 }
	for k := range int64(50) {
		require.False(t, c.place(160, 160*k, true, k+1, true, 0, allow).drop)
	}
	require.Zero(t, asked, "contiguous frames")
	c.place(160, 160*60, true, 61, true, 0, allow)
	require.Equal(t, 1, asked, "a gap")
}
