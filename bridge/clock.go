package bridge

// placement says where a frame of audio goes on a track's timeline.
type placement struct {
	pos     int64 // call-clock sample position of the frame's first sample
	gap     int64 // silence to write before the frame (samples), already capped
	skipped int64 // missing audio beyond the cap that is not filled (samples)
	drop    bool  // duplicate or too late: the frame is not written
}

// mediaClock places the frames of one track on the call clock. It trusts the
// provider's placement fields (chunk number, media timestamp) over arrival
// time: a frame whose chunk follows the last one continues the track
// seamlessly; a jump in chunk or timestamp is a gap filled with silence; a
// chunk already seen (or a timestamp well behind) is a duplicate.
//
// Positions are in samples at the track's rate. The clock is not safe for
// concurrent use: a track is fed by exactly one stream at a time.
type mediaClock struct {
	rate    int64
	maxGap  int64 // largest gap filled with silence at once, in samples
	started bool
	next    int64 // position just after the last placed sample
	skew    int64 // samples of gaps not filled (beyond maxGap), subtracted from later positions

	lastChunk int64
	hasChunk  bool
	lastN     int64 // samples in the last placed frame
}

// place decides where a frame of n samples goes. at is the frame's position
// implied by its timestamp (hasAt false when the frame has none); chunk is
// the provider's chunk number (hasChunk false when absent). first is the
// position to use when this is the track's first frame and at is unknown.
func (c *mediaClock) place(n int64, at int64, hasAt bool, chunk int64, hasChunk bool, first int64) placement {
	if !c.started {
		// The first frame: pad from where the recording stands (0 for a new
		// track, the end of the audio kept for a continued one).
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
		if gap > c.maxGap {
			skipped = gap - c.maxGap
			gap = c.maxGap
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
		gap = diff
		if gap > c.maxGap {
			skipped = gap - c.maxGap
			gap = c.maxGap
			c.skew += skipped
		}
	}
	pos := expected + gap
	c.next = pos + n
	if hasChunk {
		c.lastChunk, c.hasChunk = chunk, true
	}
	c.lastN = n
	return placement{pos: pos, gap: gap, skipped: skipped}
}
