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

	// The processes of --pid.
	procs []procRun
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

// procRun is what was measured of a process of --pid.
type procRun struct {
	proc
	before, after procSample
	samples       []procSample
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
	urls := make([]string, len(r.targets))
	for i, t := range r.targets {
		urls[i] = t.mediaURL
	}
	fmt.Fprintf(w, "\nsimulated %d call(s) as %s to %s\n", r.cmd.Calls, r.d.Name, strings.Join(urls, ", "))
	if len(r.targets) > 1 {
		captions := "on the replica it is played into"
		if r.cmd.Cross {
			captions = "on the next replica (cross-replica)"
		}
		fmt.Fprintf(w, "  replicas          %d, taking the calls in turn; each call's captions followed %s\n", len(r.targets), captions)
	}
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
	fmt.Fprintf(w, "  connect           %s\n", st.connect.summary())
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
		where := ""
		if r.bucket != nil {
			where = " in " + r.bucket.String()
		}
		fmt.Fprintf(w, "  recordings        %d/%d WAVs byte-exact%s; %d/%d call records complete (all frames, no gaps, no duplicates)\n",
			rep.wavsExact, rep.wavsChecked, where, rep.verified, rep.verified+rep.verifyFailed)
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

// printProc reports the CPU and memory of each process of --pid: over the
// whole run, and over the steady window in which every call was
// streaming; with several, their sum too.
func (rep *simReport) printProc(w io.Writer) {
	r := rep.run
	from, to := rep.steadyWindow()
	total := float64(r.cmd.Calls) * r.audio.duration().Minutes()
	var (
		sumCPU, sumSteady time.Duration
		sumWall, sumD     time.Duration
		measured, steady  int
	)
	for _, p := range rep.procs {
		if p.before.at.IsZero() {
			continue
		}
		measured++
		cpu := p.after.cpu - p.before.cpu
		wall := p.after.at.Sub(p.before.at)
		sumCPU, sumWall = sumCPU+cpu, max(sumWall, wall)
		fmt.Fprintf(w, "  %s pid %-6d  whole run: %.2f CPU-s in %.1f s (%.2f cores) = %s CPU-s per call-minute\n",
			p.name, p.pid, cpu.Seconds(), wall.Seconds(), cpu.Seconds()/wall.Seconds(), perCallMinute(cpu, total))
		win := slices.DeleteFunc(slices.Clone(p.samples), func(s procSample) bool {
			return s.at.Before(from) || s.at.After(to)
		})
		if len(win) >= 2 {
			first, last := win[0], win[len(win)-1]
			d := last.at.Sub(first.at)
			c := last.cpu - first.cpu
			sumSteady, sumD, steady = sumSteady+c, max(sumD, d), steady+1
			peak := peakRSS(win)
			fmt.Fprintf(w, "                    steady (%d calls streaming, %.1f s): %.2f CPU-s (%.2f cores, %.0f%% in the kernel) = %s CPU-s per call-minute\n",
				r.cmd.Calls, d.Seconds(), c.Seconds(), c.Seconds()/d.Seconds(), 100*(last.sys-first.sys).Seconds()/max(c.Seconds(), 1e-9),
				perCallMinute(c, d.Minutes()*r.cmd.Speed*float64(r.cmd.Calls)))
			if frames := float64(r.cmd.Calls) * d.Seconds() * r.cmd.Speed / r.audio.frameDuration().Seconds() * float64(len(r.audio.tracks)); frames > 0 && last.reads > 0 {
				fmt.Fprintf(w, "                    steady syscalls: %.2f reads and %.2f writes per media frame\n",
					float64(last.reads-first.reads)/frames, float64(last.writes-first.writes)/frames)
			}
			q := func(f float64) string { return fmtBytes(win[int(f*float64(len(win)-1))].rss) }
			fmt.Fprintf(w, "                    RSS through the steady window: %s, %s, %s, %s, %s (0, 25, 50, 75, 100 %%)\n",
				q(0), q(0.25), q(0.5), q(0.75), q(1))
			fmt.Fprintf(w, "                    RSS before %s, steady first %s, last %s, peak %s: %s per call\n",
				fmtBytes(p.before.rss), fmtBytes(first.rss), fmtBytes(last.rss), fmtBytes(peak),
				fmtBytes((peak-p.before.rss)/int64(r.cmd.Calls)))
		} else {
			fmt.Fprintf(w, "                    RSS before %s, peak %s (no steady window: the ramp is longer than a call)\n",
				fmtBytes(p.before.rss), fmtBytes(peakRSS(p.samples)))
		}
		fmt.Fprintf(w, "                    RSS after the calls %s\n", fmtBytes(p.after.rss))
	}
	if measured < 2 {
		return
	}
	// The processes are sampled side by side: their windows are the same
	// within a sampling interval.
	fmt.Fprintf(w, "  all %d processes   whole run: %.2f CPU-s (%.2f cores) = %s CPU-s per call-minute\n",
		measured, sumCPU.Seconds(), sumCPU.Seconds()/sumWall.Seconds(), perCallMinute(sumCPU, total))
	if steady == measured {
		fmt.Fprintf(w, "                    steady (%d calls streaming, %.1f s): %.2f CPU-s (%.2f cores) = %s CPU-s per call-minute\n",
			r.cmd.Calls, sumD.Seconds(), sumSteady.Seconds(), sumSteady.Seconds()/sumD.Seconds(),
			perCallMinute(sumSteady, sumD.Minutes()*r.cmd.Speed*float64(r.cmd.Calls)))
	}
}

// perCallMinute is CPU time per minute of call audio, for a report.
func perCallMinute(cpu time.Duration, callMin float64) string {
	if callMin <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", cpu.Seconds()/callMin)
}

// steadyWindow is when every call was streaming: from a second after the
// last call began to when the first one finished.
func (rep *simReport) steadyWindow() (from, to time.Time) {
	var lastStart time.Time
	for _, res := range rep.results {
		if res.streamStart.IsZero() || res.streamEnd.IsZero() {
			continue
		}
		if res.streamStart.After(lastStart) {
			lastStart = res.streamStart
		}
		if to.IsZero() || res.streamEnd.Before(to) {
			to = res.streamEnd
		}
	}
	return lastStart.Add(time.Second), to
}

// verify checks every completed call's record and recordings against what
// was sent.
func (rep *simReport) verify(ctx context.Context) {
	rep.verifyErrs = map[string]int{}
	var mu sync.Mutex
	jobs := make(chan callResult)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for res := range jobs {
				exact, checked, err := rep.run.verifyCall(ctx, res)
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
			jobs <- res
		}
	}
	close(jobs)
	wg.Wait()
}

// verifyCall waits for the call to have ended, then checks its record
// (every frame recorded, no gap, no duplicate) and that every WAV is a
// valid file holding exactly the decoded audio that was sent: the record
// from the bridge the call was played into, the WAVs from it too or, with
// --s3-bucket, from the bucket once the call is there.
func (r *simRun) verifyCall(ctx context.Context, res callResult) (exact, checked int, err error) {
	id, client := res.id, r.targets[res.replica].client
	rec, err := client.Ended(ctx, id, r.cmd.Timeout)
	if err != nil {
		return 0, 0, err
	}
	if r.bucket != nil {
		if err := r.bucket.uploaded(ctx, id, r.cmd.Timeout); err != nil {
			return 0, 0, err
		}
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
		if err := r.checkWAV(ctx, id, tr, t.decoded, client); err != nil {
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

// checkWAV checks the recording of track tr of call id against the
// decoded audio sent: from the bucket with --s3-bucket, else from the
// bridge the call was played into.
func (r *simRun) checkWAV(ctx context.Context, id string, tr bridge.TrackRecord, sent []byte, client *Client) error {
	if r.bucket == nil {
		return client.CheckWAV(ctx, id, tr, r.audio.rate, sent, true)
	}
	b, ok, err := r.bucket.get(ctx, r.bucket.key(id, tr.Name+".wav"))
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("not in the bucket")
	}
	return checkWAV(b, tr, r.audio.rate, sent, true)
}
