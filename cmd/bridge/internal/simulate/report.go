package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/callcaptions/bridge/bridge"
)

// simReport is what a run measured.
type simReport struct {
	run        *simRun
	start, end time.Time
	results    []callResult

	// The bridge's process, when --pid is given.
	before, after procSample
	samples       []procSample
	// This process, and the machine's load average, to judge the noise.
	selfBefore, selfAfter procSample
	loadBefore, loadAfter string

	// Verification of the call records and recordings.
	verified     int // calls whose record and every WAV are as sent
	verifyFailed int
	wavsExact    int
	wavsChecked  int
	verifyErrs   map[string]int
}

func (rep *simReport) failed() int {
	n := 0
	for _, r := range rep.results {
		if r.err != nil {
			n++
		}
	}
	return n
}

func (rep *simReport) print(w io.Writer) {
	r := rep.run
	a := r.audio
	st := &r.stats
	pace := "real time"
	switch {
	case r.cmd.Speed == 0:
		pace = "as fast as possible"
	case r.cmd.Speed != 1:
		pace = fmt.Sprintf("%g× real time", r.cmd.Speed)
	}
	fmt.Fprintf(w, "\nsimulated %d call(s) as %s to %s\n", r.cmd.Calls, r.d.Name, r.mediaURL)
	fmt.Fprintf(w, "  audio             %s, %s %d Hz, %d ms frames, %.1f s per call, %s, ramp %s\n",
		strings.Join(a.trackNames(), "+"), a.encoding, a.rate, a.frameDuration().Milliseconds(), a.duration().Seconds(), pace, r.cmd.Ramp)
	fmt.Fprintf(w, "  wall time         %.1f s\n", rep.end.Sub(rep.start).Seconds())
	if c := rep.selfAfter.cpu - rep.selfBefore.cpu; c > 0 {
		fmt.Fprintf(w, "  simulator         %.2f CPU-s (%.2f cores); load average %s before, %s after\n",
			c.Seconds(), c.Seconds()/rep.selfAfter.at.Sub(rep.selfBefore.at).Seconds(), rep.loadBefore, rep.loadAfter)
	}
	failed := rep.failed()
	fmt.Fprintf(w, "  calls             %d completed, %d failed\n", r.cmd.Calls-failed, failed)
	fmt.Fprintf(w, "  frames sent       %d (%d per completed call)\n", st.frames.Load(), int64(a.frames)*int64(len(a.tracks)))
	if r.cmd.Speed > 0 {
		fmt.Fprintf(w, "  pacing lateness   %s\n", st.lateness.summary())
	}
	if r.cmd.Subscribe || r.cmd.Captions {
		fmt.Fprintf(w, "  caption latency   %s\n", st.caption.summary())
		fmt.Fprintf(w, "  finals            %d received, %d predicted, %d matched (%d ending elsewhere than predicted)\n",
			st.finals.Load(), st.predicted.Load(), st.matched.Load(), st.mismatched.Load())
	}
	label := "stop-to-close"
	if !r.d.Wire.SendsStop() {
		label = "close-to-close"
	}
	fmt.Fprintf(w, "  %-17s %s\n", label, st.stopClose.summary())
	rep.printProc(w)
	if r.cmd.Verify {
		fmt.Fprintf(w, "  recordings        %d/%d WAVs byte-exact; %d/%d call records complete (all frames, no gaps, no duplicates)\n",
			rep.wavsExact, rep.wavsChecked, rep.verified, rep.verified+rep.verifyFailed)
	}
	errs := map[string]int{}
	for _, res := range rep.results {
		if res.err != nil {
			errs[res.err.Error()]++
		}
	}
	maps.Copy(errs, rep.verifyErrs)
	if len(errs) > 0 {
		fmt.Fprintf(w, "  problems:\n")
		keys := slices.Sorted(maps.Keys(errs))
		sort.SliceStable(keys, func(i, j int) bool { return errs[keys[i]] > errs[keys[j]] })
		for _, k := range keys[:min(len(keys), 10)] {
			fmt.Fprintf(w, "    %6d × %s\n", errs[k], k)
		}
		if len(keys) > 10 {
			fmt.Fprintf(w, "    … %d more kinds\n", len(keys)-10)
		}
	}
}

// printProc reports the bridge's CPU and memory: over the whole run, and
// over the steady window in which every call was streaming.
func (rep *simReport) printProc(w io.Writer) {
	r := rep.run
	if r.cmd.PID == 0 || rep.before.at.IsZero() {
		return
	}
	perCallMin := func(cpu time.Duration, callMin float64) string {
		if callMin <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", cpu.Seconds()/callMin)
	}
	cpu := rep.after.cpu - rep.before.cpu
	wall := rep.after.at.Sub(rep.before.at)
	total := float64(r.cmd.Calls) * rep.run.audio.duration().Minutes()
	fmt.Fprintf(w, "  bridge pid %-6d  whole run: %.2f CPU-s in %.1f s (%.2f cores) = %s CPU-s per call-minute\n",
		r.cmd.PID, cpu.Seconds(), wall.Seconds(), cpu.Seconds()/wall.Seconds(), perCallMin(cpu, total))

	// Steady window: from a second after the last call began streaming to
	// when the first one finished.
	var lastStart, firstEnd time.Time
	for _, res := range rep.results {
		if res.streamStart.IsZero() || res.streamEnd.IsZero() {
			continue
		}
		if res.streamStart.After(lastStart) {
			lastStart = res.streamStart
		}
		if firstEnd.IsZero() || res.streamEnd.Before(firstEnd) {
			firstEnd = res.streamEnd
		}
	}
	from := lastStart.Add(time.Second)
	win := slices.DeleteFunc(slices.Clone(rep.samples), func(s procSample) bool {
		return s.at.Before(from) || s.at.After(firstEnd)
	})
	if len(win) >= 2 {
		first, last := win[0], win[len(win)-1]
		d := last.at.Sub(first.at)
		c := last.cpu - first.cpu
		peak := peakRSS(win)
		fmt.Fprintf(w, "                    steady (%d calls streaming, %.1f s): %.2f CPU-s (%.2f cores, %.0f%% in the kernel) = %s CPU-s per call-minute\n",
			r.cmd.Calls, d.Seconds(), c.Seconds(), c.Seconds()/d.Seconds(), 100*(last.sys-first.sys).Seconds()/max(c.Seconds(), 1e-9),
			perCallMin(c, d.Minutes()*r.cmd.Speed*float64(r.cmd.Calls)))
		if frames := float64(r.cmd.Calls) * d.Seconds() * r.cmd.Speed / r.audio.frameDuration().Seconds() * float64(len(r.audio.tracks)); frames > 0 && last.reads > 0 {
			fmt.Fprintf(w, "                    steady syscalls: %.2f reads and %.2f writes per media frame\n",
				float64(last.reads-first.reads)/frames, float64(last.writes-first.writes)/frames)
		}
		q := func(f float64) string { return fmtBytes(win[int(f*float64(len(win)-1))].rss) }
		fmt.Fprintf(w, "                    RSS through the steady window: %s, %s, %s, %s, %s (0, 25, 50, 75, 100 %%)\n",
			q(0), q(0.25), q(0.5), q(0.75), q(1))
		fmt.Fprintf(w, "                    RSS before %s, steady first %s, last %s, peak %s: %s per call\n",
			fmtBytes(rep.before.rss), fmtBytes(first.rss), fmtBytes(last.rss), fmtBytes(peak),
			fmtBytes((peak-rep.before.rss)/int64(r.cmd.Calls)))
	} else {
		fmt.Fprintf(w, "                    RSS before %s, peak %s (no steady window: the ramp is longer than a call)\n",
			fmtBytes(rep.before.rss), fmtBytes(peakRSS(rep.samples)))
	}
	fmt.Fprintf(w, "                    RSS after the calls %s\n", fmtBytes(rep.after.rss))
}

// verify checks every completed call's record and recordings against what
// was sent.
func (rep *simReport) verify(ctx context.Context) {
	rep.verifyErrs = map[string]int{}
	var mu sync.Mutex
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range jobs {
				exact, checked, err := rep.run.verifyCall(ctx, id)
				mu.Lock()
				rep.wavsExact += exact
				rep.wavsChecked += checked
				if err != nil {
					rep.verifyFailed++
					rep.verifyErrs["verify: "+err.Error()]++
				} else {
					rep.verified++
				}
				mu.Unlock()
			}
		})
	}
	for _, res := range rep.results {
		if res.err == nil {
			jobs <- res.id
		}
	}
	close(jobs)
	wg.Wait()
}

// verifyCall waits for the call to have ended, then checks its record
// (every frame recorded, no gap, no duplicate) and that every WAV is a
// valid file holding exactly the decoded audio that was sent.
func (r *simRun) verifyCall(ctx context.Context, id string) (exact, checked int, err error) {
	rec, err := r.client.Ended(ctx, id, r.cmd.Timeout)
	if err != nil {
		return 0, 0, err
	}
	var problems []string
	for _, t := range r.audio.tracks {
		i := slices.IndexFunc(rec.Tracks, func(tr bridge.TrackRecord) bool { return tr.Name == t.name })
		if i < 0 {
			problems = append(problems, "track "+t.name+" missing from the call record")
			continue
		}
		tr := rec.Tracks[i]
		if tr.Frames != int64(r.audio.frames) || tr.Duplicates != 0 || tr.GapMs != 0 || tr.Samples != int64(len(t.decoded)/2) {
			problems = append(problems, fmt.Sprintf("%s: %d frames, %d duplicates, %d ms of gaps, %d samples recorded",
				t.name, tr.Frames, tr.Duplicates, tr.GapMs, tr.Samples))
		}
		checked++
		if err := r.client.CheckWAV(ctx, id, tr, r.audio.rate, t.decoded, true); err != nil {
			problems = append(problems, t.name+".wav: "+err.Error())
		} else {
			exact++
		}
	}
	if len(problems) > 0 {
		return exact, checked, errors.New(strings.Join(problems, "; "))
	}
	return exact, checked, nil
}
