package simulate

import (
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// latencies is a concurrent log-linear histogram of durations in
// microseconds: exact below 64 µs, then 32 buckets per power of two (at
// most 3 % error), so millions of samples cost a fixed 15 KB.
type latencies struct {
	counts [64 + 58*32]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

func latencyBucket(us int64) int {
	if us < 64 {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 6 // us>>e is in [32, 64)
	return 64 + (e-1)*32 + int(us>>e) - 32
}

// bucketValue is the middle of a bucket, in microseconds.
func bucketValue(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	e := (i-64)/32 + 1
	lo := int64((i-64)%32+32) << e
	return lo + (int64(1)<<e)/2
}

func (l *latencies) add(d time.Duration) {
	us := d.Microseconds()
	l.counts[latencyBucket(us)].Add(1)
	l.n.Add(1)
	for {
		m := l.max.Load()
		if us <= m || l.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile returns the q-quantile (0..1); 0 when empty.
func (l *latencies) quantile(q float64) time.Duration {
	n := l.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i := range l.counts {
		seen += l.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketValue(i), l.max.Load())) * time.Microsecond
		}
	}
	return time.Duration(l.max.Load()) * time.Microsecond
}

func (l *latencies) summary() string {
	if l.n.Load() == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s  (n=%d)", fmtDur(l.quantile(0.5)), fmtDur(l.quantile(0.99)),
		fmtDur(time.Duration(l.max.Load())*time.Microsecond), l.n.Load())
}

// fmtDur prints a duration in milliseconds with three significant digits.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
}

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	at  time.Time
	cpu time.Duration // user + system since the process started
	sys time.Duration // system (kernel) part of cpu
	rss int64         // bytes resident
	// Read and write system calls so far (/proc/<pid>/io syscr, syscw),
	// when readable: a count that, unlike CPU time, other load does not
	// blur.
	reads, writes int64
}

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// readProc reads /proc/<pid>/stat and /proc/<pid>/io.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	pages, _ := strconv.ParseInt(f[21], 10, 64) // field 24, the count VmRSS shows
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	s.sys = time.Duration(stime) * time.Second / clockTicks
	s.rss = pages * int64(os.Getpagesize())
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(io), "\n") {
			k, v, _ := strings.Cut(l, ":")
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "syscr":
				s.reads = n
			case "syscw":
				s.writes = n
			}
		}
	}
	return s, nil
}

// watchProc samples a process now and every interval until the returned
// func is called; that func samples once more and returns every sample.
func watchProc(pid int, every time.Duration) func() []procSample {
	var all []procSample // written by the sampling goroutine until done is closed
	sample := func() {
		if s, err := readProc(pid); err == nil { // else the process has exited: the samples so far stand
			all = append(all, s)
		}
	}
	sample()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() []procSample {
		close(stop)
		<-done
		return all
	}
}

// fmtBytes prints a byte count in KB or MB (powers of 1024).
func fmtBytes(b int64) string {
	switch {
	case b < 0:
		return "-" + fmtBytes(-b)
	case b < 1<<20:
		return strconv.FormatFloat(float64(b)/1024, 'f', 1, 64) + " KB"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MB"
}

// loadAverage is the machine's 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// peakRSS is the most memory any of the samples found resident.
func peakRSS(samples []procSample) int64 {
	var peak int64
	for _, s := range samples {
		peak = max(peak, s.rss)
	}
	return peak
}
