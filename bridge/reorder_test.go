package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// feed runs chunks through a reorderer as Stream.mediaInOrder does and
// returns the chunks in the order they went on ("-n" for a duplicate).
func feed(r *reorderer, chunks []int64) []int64 {
	var out []int64
	for _, c := range chunks {
		if r.bypass(c) {
			out = append(out, c)
			continue
		}
		if !r.add(c, 20*c, true, []byte{byte(c)}) {
			out = append(out, -c)
			continue
		}
		for {
			f, ok := r.pop(false)
			if !ok {
				break
			}
			out = append(out, f.chunk)
		}
	}
	for {
		f, ok := r.pop(true)
		if !ok {
			return out
		}
		out = append(out, f.chunk)
	}
}

func TestReorderer(t *testing.T) {
	cases := []struct {
		name   string
		window int
		in     []int64
		want   []int64
	}{
		{"in order passes straight through", 3, []int64{1, 2, 3, 4}, []int64{1, 2, 3, 4}},
		{"the first two swapped (the Telnyx fixture)", 3, []int64{2, 1, 3}, []int64{1, 2, 3}},
		{"a late frame within the window", 3, []int64{1, 3, 4, 2, 5}, []int64{1, 2, 3, 4, 5}},
		{"a lost frame is given up when the window fills", 3, []int64{1, 3, 4, 5, 6}, []int64{1, 3, 4, 5, 6}},
		{"a frame later than the window goes on and the clock drops it", 2, []int64{1, 3, 4, 2}, []int64{1, 3, 4, 2}},
		{"a duplicate held frame is refused", 3, []int64{1, 3, 3, 2}, []int64{1, -3, 2, 3}},
		{"held frames drain in order at the end", 4, []int64{1, 4, 3}, []int64{1, 3, 4}},
		{"a stream that starts after chunk 1", 3, []int64{7, 6, 5, 8}, []int64{5, 6, 7, 8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, feed(newReorderer(tc.window), tc.in))
		})
	}
}

// TestReordererPayloads: a held frame keeps its own bytes, whatever the
// caller does with its buffer afterwards.
func TestReordererPayloads(t *testing.T) {
	r := newReorderer(3)
	buf := []byte{2, 2}
	require.True(t, r.add(2, 40, true, buf))
	buf[0], buf[1] = 9, 9
	require.True(t, r.add(1, 20, true, []byte{1, 1}))
	f, ok := r.pop(false)
	require.True(t, ok)
	require.Equal(t, []byte{1, 1}, f.payload)
	f, ok = r.pop(false)
	require.True(t, ok)
	require.Equal(t, int64(2), f.chunk)
	require.Equal(t, int64(40), f.ts)
	require.Equal(t, []byte{2, 2}, f.payload)
}

// TestReordererAllocations: once its slots have grown, the window
// allocates nothing, in order or not.
func TestReordererAllocations(t *testing.T) {
	r := newReorderer(5)
	payload := make([]byte, 160)
	chunk := int64(0)
	step := func() {
		// Each round: two frames swapped, then one in order.
		for _, c := range []int64{chunk + 2, chunk + 1, chunk + 3} {
			if r.bypass(c) {
				continue
			}
			r.add(c, c*20, true, payload)
			for {
				if _, ok := r.pop(false); !ok {
					break
				}
			}
		}
		chunk += 3
	}
	for range 10 {
		step()
	}
	require.Zero(t, testing.AllocsPerRun(200, step))
}
