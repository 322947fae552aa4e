package simulate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
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
	calls      int
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
		if !r.completed() {
			n++
		}
	}
	return n
}

// print writes the report.
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
	fmt.Fprintf(w, "\nsimulated %d call(s) as %s to %s\n", rep.calls, r.d.Name, r.mediaURL)
	fmt.Fprintf(w, "  audio             %s, %s %d Hz, %d ms frames, %.1f s per call, %s, ramp %s\n",
		strings.Join(a.trackNames(), "+"), a.encoding, a.rate, a.frameDuration().Milliseconds(), a.duration().Seconds(), pace, r.cmd.Ramp)
	fmt.Fprintf(w, "  wall time         %.1f s\n", rep.end.Sub(rep.start).Seconds())
	if c := rep.selfAfter.cpu - rep.selfBefore.cpu; c > 0 {
		fmt.Fprintf(w, "  simulator         %.2f CPU-s (%.2f cores); load average %s before, %s after\n",
			c.Seconds(), c.Seconds()/rep.selfAfter.at.Sub(rep.selfBefore.at).Seconds(), rep.loadBefore, rep.loadAfter)
	}
	failed := rep.failed()
	fmt.Fprintf(w, "  calls             %d completed, %d failed\n", rep.calls-failed, failed)
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
		for i, k := range keys {
			if i == 10 {
				fmt.Fprintf(w, "    … %d more kinds\n", len(keys)-10)
				break
			}
			fmt.Fprintf(w, "    %6d × %s\n", errs[k], k)
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
	audioMin := func(wall time.Duration, calls int) float64 {
		if r.cmd.Speed == 0 {
			return 0
		}
		return wall.Minutes() * r.cmd.Speed * float64(calls)
	}
	perCallMin := func(cpu time.Duration, callMin float64) string {
		if callMin <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", cpu.Seconds()/callMin)
	}
	cpu := rep.after.cpu - rep.before.cpu
	wall := rep.after.at.Sub(rep.before.at)
	total := float64(rep.calls) * rep.run.audio.duration().Minutes()
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
	win := between(rep.samples, lastStart.Add(time.Second), firstEnd)
	if len(win) >= 2 {
		first, last := win[0], win[len(win)-1]
		d := last.at.Sub(first.at)
		c := last.cpu - first.cpu
		var peak int64
		for _, s := range win {
			peak = max(peak, s.rss)
		}
		fmt.Fprintf(w, "                    steady (%d calls streaming, %.1f s): %.2f CPU-s (%.2f cores, %.0f%% in the kernel) = %s CPU-s per call-minute\n",
			rep.calls, d.Seconds(), c.Seconds(), c.Seconds()/d.Seconds(), 100*(last.sys-first.sys).Seconds()/max(c.Seconds(), 1e-9), perCallMin(c, audioMin(d, rep.calls)))
		if frames := float64(rep.calls) * d.Seconds() * r.cmd.Speed / r.audio.frameDuration().Seconds() * float64(len(r.audio.tracks)); frames > 0 && last.reads > 0 {
			fmt.Fprintf(w, "                    steady syscalls: %.2f reads and %.2f writes per media frame\n",
				float64(last.reads-first.reads)/frames, float64(last.writes-first.writes)/frames)
		}
		q := func(f float64) string { return fmtBytes(win[int(f*float64(len(win)-1))].rss) }
		fmt.Fprintf(w, "                    RSS through the steady window: %s, %s, %s, %s, %s (0, 25, 50, 75, 100 %%)\n",
			q(0), q(0.25), q(0.5), q(0.75), q(1))
		fmt.Fprintf(w, "                    RSS before %s, steady first %s, last %s, peak %s: %s per call\n",
			fmtBytes(rep.before.rss), fmtBytes(first.rss), fmtBytes(last.rss), fmtBytes(peak), fmtBytes((peak-rep.before.rss)/int64(rep.calls)))
	} else {
		var peak int64
		for _, s := range rep.samples {
			peak = max(peak, s.rss)
		}
		fmt.Fprintf(w, "                    RSS before %s, peak %s (no steady window: the ramp is longer than a call)\n",
			fmtBytes(rep.before.rss), fmtBytes(peak))
	}
	fmt.Fprintf(w, "                    RSS after the calls %s\n", fmtBytes(rep.after.rss))
}

// verify checks every completed call's record and recordings against what
// was sent.
func (rep *simReport) verify(ctx context.Context) {
	rep.verifyErrs = map[string]int{}
	var mu sync.Mutex
	fail := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		rep.verifyFailed++
		rep.verifyErrs["verify: "+msg]++
	}
	jobs := make(chan string)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: time.Minute}
	for range 4 {
		wg.Go(func() {
			for id := range jobs {
				exact, checked, err := rep.run.verifyCall(ctx, client, id)
				mu.Lock()
				rep.wavsExact += exact
				rep.wavsChecked += checked
				mu.Unlock()
				if err != nil {
					fail(err.Error())
					continue
				}
				mu.Lock()
				rep.verified++
				mu.Unlock()
			}
		})
	}
	for _, res := range rep.results {
		if res.completed() {
			jobs <- res.id
		}
	}
	close(jobs)
	wg.Wait()
}

// verifyCall waits for the call to have ended, then checks its record
// (every frame recorded, no gap, no duplicate) and that every WAV is a
// valid file holding exactly the decoded audio that was sent.
func (r *simRun) verifyCall(ctx context.Context, client *http.Client, id string) (exact, checked int, err error) {
	base := r.httpBase + "/api/calls/" + url.PathEscape(id)
	var rec bridge.CallRecord
	deadline := time.Now().Add(r.cmd.Timeout)
	for {
		rec = bridge.CallRecord{}
		if err := r.getJSON(ctx, client, base, &rec); err != nil {
			return 0, 0, err
		}
		if rec.Status == bridge.StatusEnded {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("call record still %q after %s", rec.Status, r.cmd.Timeout)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	var problems []string
	for _, t := range r.audio.tracks {
		var tr *bridge.TrackRecord
		for i := range rec.Tracks {
			if rec.Tracks[i].Name == t.name {
				tr = &rec.Tracks[i]
			}
		}
		if tr == nil {
			problems = append(problems, "track "+t.name+" missing from the call record")
			continue
		}
		if tr.Frames != int64(r.audio.frames) || tr.Duplicates != 0 || tr.GapMs != 0 || tr.Samples != t.samples {
			problems = append(problems, fmt.Sprintf("%s: %d frames, %d duplicates, %d ms of gaps, %d samples recorded",
				t.name, tr.Frames, tr.Duplicates, tr.GapMs, tr.Samples))
		}
		checked++
		sum, rate, err := r.wavSum(ctx, client, base+"/recordings/"+t.name+".wav")
		switch {
		case err != nil:
			problems = append(problems, t.name+".wav: "+err.Error())
		case rate != r.audio.rate:
			problems = append(problems, fmt.Sprintf("%s.wav: %d Hz, want %d", t.name, rate, r.audio.rate))
		case sum != t.recorded:
			problems = append(problems, t.name+".wav: audio differs from what was sent")
		default:
			exact++
		}
	}
	if len(problems) > 0 {
		return exact, checked, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return exact, checked, nil
}

func (r *simRun) get(ctx context.Context, client *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if r.apiToken != "" {
		req.Header.Set("Authorization", "Bearer "+r.apiToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: HTTP %d", strings.TrimPrefix(u, r.httpBase), resp.StatusCode)
	}
	return resp, nil
}

func (r *simRun) getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	resp, err := r.get(ctx, client, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// wavSum reads a recording, checks its header against its length, and
// returns the SHA-256 of its samples and its rate.
func (r *simRun) wavSum(ctx context.Context, client *http.Client, u string) (sum [sha256.Size]byte, rate int, err error) {
	resp, err := r.get(ctx, client, u)
	if err != nil {
		return sum, 0, err
	}
	defer resp.Body.Close()
	var hdr [44]byte
	if _, err := io.ReadFull(resp.Body, hdr[:]); err != nil {
		return sum, 0, fmt.Errorf("header: %w", err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" || string(hdr[36:40]) != "data" {
		return sum, 0, fmt.Errorf("not a canonical PCM WAV")
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return sum, 0, err
	}
	if size := int64(binary.LittleEndian.Uint32(hdr[40:44])); size != n {
		return sum, 0, fmt.Errorf("header says %d bytes of audio, file has %d", size, n)
	}
	if riff := int64(binary.LittleEndian.Uint32(hdr[4:8])); riff != n+36 {
		return sum, 0, fmt.Errorf("RIFF size %d, want %d", riff, n+36)
	}
	copy(sum[:], h.Sum(nil))
	return sum, int(binary.LittleEndian.Uint32(hdr[24:28])), nil
}
