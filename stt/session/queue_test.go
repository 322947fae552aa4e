package session

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func frameOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

func TestPCMQueue(t *testing.T) {
	t.Run("contiguous audio comes out in chunks of the asked size with positions", func(t *testing.T) {
		q := newQueue(64 << 10)
		for i := range 10 {
			q.push(int64(160*i), frameOf(byte(i), 320))
		}
		buf := make([]byte, 1600)
		pos, n, ok := q.pop(buf)
		require.True(t, ok)
		require.Equal(t, int64(0), pos)
		require.Equal(t, 1600, n)
		require.Equal(t, byte(4), buf[1599])
		pos, n, ok = q.pop(buf)
		require.True(t, ok)
		require.Equal(t, int64(800), pos)
		require.Equal(t, 1600, n)
		_, _, ok = q.pop(buf)
		require.False(t, ok)
	})
	t.Run("a hole in positions splits the audio", func(t *testing.T) {
		q := newQueue(64 << 10)
		q.push(0, frameOf(1, 320))
		q.push(320, frameOf(2, 320)) // 160 samples missing
		buf := make([]byte, 1600)
		pos, n, _ := q.pop(buf)
		require.Equal(t, []any{int64(0), 320}, []any{pos, n})
		pos, n, _ = q.pop(buf)
		require.Equal(t, []any{int64(320), 320}, []any{pos, n})
	})
	t.Run("full: the oldest audio is dropped and counted, push never blocks", func(t *testing.T) {
		q := newQueue(4096)
		for i := range 100 {
			require.Equal(t, (i+1)*320 > 4096, q.push(int64(160*i), frameOf(byte(i), 320)), "frame %d", i)
		}
		from, dropped := q.takeDroppedSpan()
		require.Equal(t, int64(100*320-4096), dropped, "the newest 4 KiB is kept")
		require.Equal(t, int64(0), from, "the dropped stretch starts at the oldest audio")
		_, dropped = q.takeDroppedSpan()
		require.Zero(t, dropped)
		buf := make([]byte, 8192)
		pos, n, _ := q.pop(buf)
		require.Equal(t, int64(100*160-2048), pos, "what is left is the newest audio")
		require.Equal(t, 4096, n)
		require.Equal(t, byte(99), buf[n-1])
	})
	t.Run("grows only as needed", func(t *testing.T) {
		q := newQueue(1 << 20)
		buf := make([]byte, 1600)
		for i := range 1000 {
			q.push(int64(160*i), frameOf(1, 320))
			_, _, ok := q.pop(buf)
			require.True(t, ok)
		}
		require.Equal(t, queueInitialBytes, len(q.buf), "a consumer that keeps up keeps the queue at its initial size")
	})
	t.Run("wrap-around keeps bytes in order", func(t *testing.T) {
		q := newQueue(4096)
		buf := make([]byte, 700)
		var want, got []byte
		for i := range 40 {
			f := frameOf(byte(i), 300)
			want = append(want, f...)
			q.push(int64(150*i), f)
			if i%2 == 1 {
				for {
					_, n, ok := q.pop(buf)
					if !ok {
						break
					}
					got = append(got, buf[:n]...)
				}
			}
		}
		require.Equal(t, want, got)
	})
	t.Run("closed: refuses audio, queued audio can still be read", func(t *testing.T) {
		q := newQueue(4096)
		q.push(0, frameOf(1, 320))
		q.close()
		q.push(160, frameOf(2, 320))
		buf := make([]byte, 1600)
		_, n, ok := q.pop(buf)
		require.True(t, ok)
		require.Equal(t, 320, n)
		_, _, ok = q.pop(buf)
		require.False(t, ok)
		require.True(t, q.isClosed())
	})
}

func TestPCMQueuePushDoesNotAllocate(t *testing.T) {
	q := newQueue(64 << 10)
	f := frameOf(1, 320)
	buf := make([]byte, 1600)
	var pos int64
	allocs := testing.AllocsPerRun(1000, func() {
		q.push(pos, f)
		pos += 160
		q.pop(buf)
	})
	require.Zero(t, allocs)
}
