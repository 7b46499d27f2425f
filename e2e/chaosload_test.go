package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chaosApp is the program of the chaos tests, in two roles. "backend"
// answers every path with 200 "ok <instance>" and the header X-Instance,
// after START_DELAY at start-up (a program that takes a moment to come
// up, so a restarted instance is really missing for a while); its
// behaviour is switched at run time through /chaos/mode on its own port
// (fail=<percent> answers 503 that often, delay=<duration> waits before
// answering, reset=1 clears the in-flight maximum), and /chaos/stats
// tells what it served. "client" only serves /healthz: its sidecar's
// upstream port is what the test drives.
const chaosApp = `package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

var failPct, delay, served, failed, inflight, maxInflight atomic.Int64

func main() {
	role, inst := os.Args[1], os.Getenv("WEFT_INSTANCE")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	if role == "backend" {
		if d, err := time.ParseDuration(os.Getenv("START_DELAY")); err == nil {
			time.Sleep(d)
		}
		mux.HandleFunc("/chaos/mode", func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			p, _ := strconv.Atoi(q.Get("fail"))
			d, _ := time.ParseDuration(q.Get("delay"))
			failPct.Store(int64(p))
			delay.Store(int64(d))
			if q.Get("reset") != "" {
				maxInflight.Store(0)
			}
			io.WriteString(w, "ok")
		})
		mux.HandleFunc("/chaos/stats", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "{\"served\":%d,\"failed\":%d,\"maxInflight\":%d}", served.Load(), failed.Load(), maxInflight.Load())
		})
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
			}
			if d := delay.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			w.Header().Set("X-Instance", inst)
			if p := failPct.Load(); p > 0 && rand.IntN(100) < int(p) {
				failed.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "chaos")
				return
			}
			served.Add(1)
			io.WriteString(w, "ok "+inst)
		})
	}
	fmt.Println(role, inst, "listening on", os.Getenv("PORT"))
	fmt.Fprintln(os.Stderr, http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux))
	os.Exit(1)
}
`

// writeChaosApp writes the chaos program as a Go module into dir/app.
func writeChaosApp(t *testing.T, dir string) {
	t.Helper()
	mustWrite(t, filepath.Join(dir, "go.mod"), "module chaostest\n\ngo 1.22\n")
	mustWrite(t, filepath.Join(dir, "app", "main.go"), chaosApp)
}

// Load of every chaos scenario: a constant 200 requests/s for 30 s.
const (
	chaosRate     = 200
	chaosRequests = 30 * chaosRate
	chaosAt       = 5 * time.Second // when the fault is injected
)

// shot is one request of an open-loop run; times are offsets from the
// run's start.
type shot struct {
	due, end time.Duration
	status   int    // 0 when err is set
	instance string // X-Instance of the answer
	overflow string // x-weft-overflow of the answer
	err      error
}

func (s shot) ok() bool { return s.err == nil && s.status == http.StatusOK }

func (s shot) String() string {
	return fmt.Sprintf("status %d, instance %q, overflow %q, err %v", s.status, s.instance, s.overflow, s.err)
}

// tally counts the run's answers: ok, those shed says were shed, and the
// others, with the first of those.
func (r *loadRun) tally(shed func(shot) bool) (okN, shedN, other int, first string) {
	for _, s := range r.shots {
		switch {
		case s.ok():
			okN++
		case shed(s):
			shedN++
		default:
			if other == 0 {
				first = s.String()
			}
			other++
		}
	}
	return okN, shedN, other, first
}

// loadRun is an open-loop run: request i is sent at start + i/rate
// whatever happened to the others (no coordinated omission), and its
// latency runs from that due time to the end of the answer.
type loadRun struct {
	start time.Time
	shots []shot
	done  chan struct{}
}

// startLoad sends n GETs to url at rate per second, in the background.
// Every request is bounded by a 5 s timeout, so the run ends at most 5 s
// after the last one is due.
func startLoad(url string, rate float64, n int) *loadRun {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	r := &loadRun{start: time.Now(), shots: make([]shot, n), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer tr.CloseIdleConnections()
		var wg sync.WaitGroup
		for i := range n {
			due := time.Duration(math.Round(float64(i) * float64(time.Second) / rate))
			if d := time.Until(r.start.Add(due)); d > 0 {
				time.Sleep(d)
			}
			r.shots[i].due = due
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := &r.shots[i]
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.status = resp.StatusCode
					s.instance = resp.Header.Get("X-Instance")
					s.overflow = resp.Header.Get("X-Weft-Overflow")
				}
				s.err = err
				s.end = time.Since(r.start)
			}()
		}
		wg.Wait()
	}()
	return r
}

// at returns the wall time of offset d in the run.
func (r *loadRun) at(d time.Duration) time.Time { return r.start.Add(d) }

// offset returns t as an offset in the run.
func (r *loadRun) offset(t time.Time) time.Duration { return t.Sub(r.start) }

// wait waits for the last answer (bounded by the requests' timeouts).
func (r *loadRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(chaosRequests/chaosRate*time.Second + 30*time.Second):
		t.Fatal("the load run did not end")
	}
}

// failed counts the requests that did not get a 200, and returns the
// first failure for the log.
func (r *loadRun) failed() (int, string) {
	n, first := 0, ""
	for _, s := range r.shots {
		if !s.ok() {
			if n == 0 {
				first = fmt.Sprintf("request due at %s: status %d, err %v", s.due, s.status, s.err)
			}
			n++
		}
	}
	return n, first
}

// p99 is the 99th percentile latency (nearest rank, due time to answer)
// of the requests due at or after from, failed ones included.
func (r *loadRun) p99(from time.Duration) time.Duration {
	var l []time.Duration
	for _, s := range r.shots {
		if s.due >= from {
			l = append(l, s.end-s.due)
		}
	}
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[int(math.Ceil(0.99*float64(len(l))))-1]
}

// share is the share of the 200 answers to requests due at or after from
// that came from instance.
func (r *loadRun) share(instance string, from time.Duration) float64 {
	n, all := 0, 0
	for _, s := range r.shots {
		if s.due >= from && s.ok() {
			all++
			if s.instance == instance {
				n++
			}
		}
	}
	if all == 0 {
		return 0
	}
	return float64(n) / float64(all)
}

// sleepUntil sleeps until t: the scenarios inject faults on a schedule.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// ms renders a duration in whole milliseconds for the figures line.
func ms(d time.Duration) int64 { return d.Milliseconds() }

// series is a counter or gauge polled every 20 ms in the background:
// the times at which its value changed.
type series struct {
	mu     sync.Mutex
	points []point
	errs   int
	stop   chan struct{}
	done   chan struct{}
}

type point struct {
	at time.Time
	v  float64
}

// poll starts polling read every 20 ms until the test ends.
func poll(t *testing.T, read func() (float64, error)) *series {
	s := &series{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			v, err := read()
			now := time.Now()
			s.mu.Lock()
			switch {
			case err != nil:
				s.errs++
			case len(s.points) == 0 || s.points[len(s.points)-1].v != v:
				s.points = append(s.points, point{now, v})
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *series) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// last is the latest value read.
func (s *series) last() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.points) == 0 {
		return 0
	}
	return s.points[len(s.points)-1].v
}

// valueAt is the value last read at or before t.
func (s *series) valueAt(t time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := 0.0
	for _, p := range s.points {
		if p.at.After(t) {
			break
		}
		v = p.v
	}
	return v
}

// firstChange is the first time after t at which the value changed.
func (s *series) firstChange(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.points {
		if p.at.After(t) {
			return p.at, true
		}
	}
	return time.Time{}, false
}

// lastChange is the last time after t at which the value changed.
func (s *series) lastChange(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.points); n > 0 && s.points[n-1].at.After(t) {
		return s.points[n-1].at, true
	}
	return time.Time{}, false
}

// maxValue is the largest value read.
func (s *series) maxValue() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0.0
	for _, p := range s.points {
		m = max(m, p.v)
	}
	return m
}

// promValue reads a Prometheus text page and sums the samples of metric
// whose labels contain every one of labels (`cluster="..."`).
func promValue(url, metric string, labels ...string) (float64, error) {
	body, err := httpGet(url)
	if err != nil {
		return 0, err
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		sel, val, ok := strings.Cut(line[len(metric):], " ")
		if !ok {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(sel, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", metric, line, err)
		}
		sum, found = sum+v, true
	}
	if !found && len(labels) > 0 {
		// A labelled counter that never fired has no sample: zero.
		return 0, nil
	}
	return sum, nil
}

// appStats is what a backend's /chaos/stats says.
type appStats struct {
	Served      int `json:"served"`
	Failed      int `json:"failed"`
	MaxInflight int `json:"maxInflight"`
}

func readAppStats(t *testing.T, port int) appStats {
	t.Helper()
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/chaos/stats", port))
	var st appStats
	if err == nil {
		err = json.Unmarshal([]byte(body), &st)
	}
	if err != nil {
		t.Fatalf("stats of the backend on port %d: %v (%q)", port, err, body)
	}
	return st
}

// setMode switches the behaviour of the backend on port (see chaosApp).
func setMode(t *testing.T, port int, query string) {
	t.Helper()
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/chaos/mode?%s", port, query)); err != nil {
		t.Fatalf("chaos mode %q on port %d: %v", query, port, err)
	}
}

// figures logs one parseable line, "chaos: key=value ...", that
// bench/chaos.sh turns into a table.
func figures(t *testing.T, kv ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("chaos:")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Log(b.String())
}

// chaosBinary builds the chaos program once per test binary, for the
// runs that do not go through weft up.
var chaosBinary = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(filepath.Dir(weftBin), "chaos-app") // removed by TestMain
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module chaostest\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "app", "main.go"), []byte(chaosApp), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "chaos-app")
	cmd := exec.CommandContext(context.Background(), "go", "build", "-o", bin, "./app")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the chaos program: %w\n%s", err, out)
	}
	return bin, nil
})

// busiest waits until the fault time of run, watching the backends
// (instance name → program port) during the last second before it, and
// returns the one that served the most in that second, its share of
// what they all served, and every backend's stats at the fault time. The
// fault goes to that instance: with peak EWMA an instance may get almost
// nothing for a while, and a fault injected there would show nothing.
func busiest(t *testing.T, run *loadRun, ports map[string]int) (string, float64, map[string]appStats) {
	t.Helper()
	sleepUntil(run.at(chaosAt - time.Second))
	before := map[string]appStats{}
	for name, port := range ports {
		before[name] = readAppStats(t, port)
	}
	sleepUntil(run.at(chaosAt))
	now := map[string]appStats{}
	best, bestN, all := "", -1, 0
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		now[name] = readAppStats(t, ports[name])
		n := now[name].Served + now[name].Failed - before[name].Served - before[name].Failed
		all += n
		if n > bestN {
			best, bestN = name, n
		}
	}
	share := 0.0
	if all > 0 {
		share = 100 * float64(bestN) / float64(all)
	}
	return best, share, now
}
