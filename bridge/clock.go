package bridge

// placement says where a frame of audio goes on a track's timeline.
type placement struct {
	pos     int64 // call-clock sample position of the frame's first sample
	gap     int64 // silence to write before the frame (samples), already capped
	skipped int64 // missing audio beyond the caps that is not filled (samples)
	drop    bool  // duplicate or too late: the frame is not written
}

// mediaClock places the frames of one track on the call clock. It trusts the
// provider's placement fields (chunk number, media timestamp) over arrival
// time: a frame whose chunk follows the last one continues the track
// seamlessly; a jump in chunk or timestamp is a gap filled with silence; a
// chunk already seen (or a timestamp well behind) is a duplicate.
//
// Silence is bounded twice: one gap fills at most maxGap, and all the gaps
// of the track together at most what the caller allows now (the call's
// wall time so far plus the maximum gap), so that timestamps jumping ahead
// on every frame, each jump within maxGap, cannot fill a disk with silence
// faster than a call lasts. Audio beyond either bound is not filled: the
// frame follows the audio before it, and later frames keep their distance
// to it (skew). The frame itself is kept, not dropped: it is audio the
// provider sent, and its bytes bound it already.
//
// Positions are in samples at the track's rate. The clock is not safe for
// concurrent use: a track is fed by exactly one stream at a time.
type mediaClock struct {
	rate    int64
	maxGap  int64 // largest gap filled with silence at once, in samples
	started bool
	next    int64 // position just after the last placed sample
	skew    int64 // samples of gaps not filled (beyond the bounds), subtracted from later positions
	filled  int64 // samples of silence placed so far

	lastChunk int64
	hasChunk  bool
	lastN     int64 // samples in the last placed frame
}

// place decides where a frame of n samples goes. at is the frame's position
// implied by its timestamp (hasAt false when the frame has none); chunk is
// the provider's chunk number (hasChunk false when absent). first is the
// position to use when this is the track's first frame and at is unknown.
// allow is the most silence, in samples, the track may have been filled
// with in all by now; it is asked only when the frame would need silence.
func (c *mediaClock) place(n int64, at int64, hasAt bool, chunk int64, hasChunk bool, first int64, allow func() int64) placement {
	if !c.started {
		// The first frame: pad from where the recording stands (0 for a new
		// track, the end of the audio kept for a continued one). A track
		// that starts late is padded to its place on the call clock however
		// late that is: only the allowance bounds it, not maxGap (its
		// start is not missing audio, and the allowance covers the wall
		// time the call has run).
		c.started = true
		pos := first
		if hasAt {
			pos = at
		}
		if pos < c.next {
			pos = c.next
		}
		gap := pos - c.next
		var skipped int64
		if gap > 0 {
			gap, skipped = c.bound(gap, gap, allow)
			c.skew = skipped
		}
		start := c.next + gap
		c.next = start + n
		c.lastChunk, c.hasChunk, c.lastN = chunk, hasChunk, n
		return placement{pos: start, gap: gap, skipped: skipped}
	}

	// Where the provider says the frame belongs, in our (skew-corrected) timeline.
	expected := c.next
	var want int64
	switch {
	case hasAt:
		want = at - c.skew
	case hasChunk && c.hasChunk:
		want = expected + (chunk-c.lastChunk-1)*c.lastN
	default:
		want = expected // nothing to go by: contiguous
	}

	if hasChunk && c.hasChunk {
		switch {
		case chunk <= c.lastChunk:
			return placement{drop: true} // seen already, or older than what we wrote
		case chunk == c.lastChunk+1:
			want = expected // the next frame: no gap whatever the timestamp jitter
		}
	}

	// Half a frame of tolerance absorbs timestamp rounding and jitter.
	tol := n / 2
	if tol < 1 {
		tol = 1
	}
	diff := want - expected
	if diff < -tol {
		return placement{drop: true}
	}
	var gap, skipped int64
	if diff > tol {
		gap, skipped = c.bound(diff, c.maxGap, allow)
		c.skew += skipped
	}
	pos := expected + gap
	c.next = pos + n
	if hasChunk {
		c.lastChunk, c.hasChunk = chunk, true
	}
	c.lastN = n
	return placement{pos: pos, gap: gap, skipped: skipped}
}

// bound splits a gap into the silence to fill (at most most, and at most
// what allow leaves) and the rest, which is skipped, and counts the filled
// part.
func (c *mediaClock) bound(gap, most int64, allow func() int64) (fill, skipped int64) {
	fill = min(gap, most)
	if room := allow() - c.filled; fill > room {
		fill = max(room, 0)
	}
	c.filled += fill
	return fill, gap - fill
}
