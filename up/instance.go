package up

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// instance is one replica of a unit: its program and its proxy, run by
// one goroutine (run).
type instance struct {
	s     *Supervisor
	id    Instance
	after <-chan struct{} // closed when the previous instance of this index has stopped

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	appLog, proxyLog *LogSink

	mu     sync.Mutex
	unit   *Unit // latest unit (same Revision as the one run started with)
	status InstanceStatus
}

func (in *instance) stopping() bool { return in.ctx.Err() != nil }

func (in *instance) setUnit(u *Unit) {
	in.mu.Lock()
	in.unit = u
	in.mu.Unlock()
}

func (in *instance) getUnit() *Unit {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.unit
}

func (in *instance) snapshot() InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.status
}

// runState is the run goroutine's view of the instance.
type runState struct {
	app, proxy               *process
	appTimer, proxyTimer     Timer
	appBackoff, proxyBackoff time.Duration
	appStarted, proxyStarted time.Time
	appReady, proxyReady     bool
	appFails, proxyFails     int
	wasReady                 bool      // ready since the program last started
	unreadySince             time.Time // when a program that was ready last failed to be
	lastReady                bool      // readiness at the last probe round (for events)
	restarts, proxyRestarts  int
	lastExit, lastProbe      string
	nextRestart              time.Time
	backoff                  time.Duration
}

// run starts the instance, keeps it running and stops it when in.ctx is
// done. It runs on its own goroutine, owned by the Supervisor.
func (in *instance) run() {
	defer close(in.done)
	if in.after != nil {
		select {
		case <-in.after:
		case <-in.ctx.Done():
			return
		}
	}
	o := &in.s.opts
	clk := o.Clock
	u := in.getUnit()
	r := u.Readiness
	created := clk.Now()
	var st runState
	probe := clk.NewTimer(0)
	defer func() {
		probe.Stop()
		for _, t := range []Timer{st.appTimer, st.proxyTimer} {
			if t != nil {
				t.Stop()
			}
		}
		wasReady := st.lastReady
		in.publish(u, &st, false)
		// A planned stop (scale down, replacement) of an instance that was
		// serving: its registration has just turned unready; give the
		// change time to reach every proxy before the program stops, so no
		// request is sent to it on the way out. Not on a full shutdown.
		if wasReady && st.app != nil && o.DrainDelay > 0 && !in.s.shuttingDown() {
			t := clk.NewTimer(o.DrainDelay)
			<-t.C()
		}
		var wg sync.WaitGroup
		for _, p := range []*process{st.app, st.proxy} {
			if p != nil {
				wg.Go(func() { p.stop(clk, o.StopTimeout) })
			}
		}
		wg.Wait()
		stopped := st.app != nil || st.proxy != nil
		st.app, st.proxy = nil, nil
		in.publish(u, &st, false)
		if stopped {
			in.event("stopped")
		}
	}()

	for {
		now := clk.Now()
		if u.Proxy != nil && st.proxy == nil && st.proxyTimer == nil {
			p, err := startProcess(u.Proxy(in.id), in.proxyLog)
			if err != nil {
				st.proxyBackoff = in.nextBackoff(st.proxyBackoff, 0)
				st.proxyTimer = clk.NewTimer(st.proxyBackoff)
				in.event("proxy did not start (%v); retrying in %s", err, st.proxyBackoff)
			} else {
				st.proxy, st.proxyStarted, st.proxyReady, st.proxyFails = p, now, false, 0
			}
		}
		if u.App != nil && st.app == nil && st.appTimer == nil &&
			(u.Proxy == nil || st.proxyReady || now.Sub(created) >= o.ProxyWait) {
			p, err := in.startApp(u)
			if err != nil {
				st.appBackoff = in.nextBackoff(st.appBackoff, 0)
				st.appTimer = clk.NewTimer(st.appBackoff)
				st.lastExit = err.Error()
				st.nextRestart, st.backoff = now.Add(st.appBackoff), st.appBackoff
				in.event("did not start (%v); retrying in %s", err, st.appBackoff)
			} else {
				st.app, st.appStarted, st.appReady, st.appFails, st.wasReady = p, now, false, 0, false
				in.event("started (pid %d, port %d)", p.pid, in.id.Ports.App)
			}
		}
		in.publish(u, &st, false)

		var appDone, proxyDone <-chan struct{}
		var appTimerC, proxyTimerC <-chan time.Time
		if st.app != nil {
			appDone = st.app.done
		}
		if st.proxy != nil {
			proxyDone = st.proxy.done
		}
		if st.appTimer != nil {
			appTimerC = st.appTimer.C()
		}
		if st.proxyTimer != nil {
			proxyTimerC = st.proxyTimer.C()
		}
		select {
		case <-in.ctx.Done():
			return
		case <-appDone:
			reason := exitReason(st.app.err)
			st.app.signalGroup(syscall.SIGKILL) // whatever it left behind
			st.appBackoff = in.nextBackoff(st.appBackoff, clk.Now().Sub(st.appStarted))
			st.app, st.appReady, st.appFails, st.wasReady, st.lastReady = nil, false, 0, false, false
			st.unreadySince = time.Time{}
			st.appTimer = clk.NewTimer(st.appBackoff)
			st.restarts++
			st.lastExit, st.nextRestart, st.backoff = reason, clk.Now().Add(st.appBackoff), st.appBackoff
			in.event("exited (%s); restarting in %s", reason, st.appBackoff)
		case <-appTimerC:
			st.appTimer, st.nextRestart, st.backoff = nil, time.Time{}, 0
		case <-proxyDone:
			reason := exitReason(st.proxy.err)
			st.proxy.signalGroup(syscall.SIGKILL)
			st.proxyBackoff = in.nextBackoff(st.proxyBackoff, clk.Now().Sub(st.proxyStarted))
			st.proxy, st.proxyReady, st.proxyFails, st.lastReady = nil, false, 0, false
			st.proxyTimer = clk.NewTimer(st.proxyBackoff)
			if u.App == nil {
				st.restarts++
				st.lastExit, st.nextRestart, st.backoff = reason, clk.Now().Add(st.proxyBackoff), st.proxyBackoff
			} else {
				st.proxyRestarts++
			}
			in.event("proxy exited (%s); restarting in %s", reason, st.proxyBackoff)
		case <-proxyTimerC:
			st.proxyTimer = nil
			if u.App == nil {
				st.nextRestart, st.backoff = time.Time{}, 0
			}
		case <-probe.C():
			in.probe(u, r, &st)
			interval := r.Period
			if !in.ready(u, &st) {
				interval = min(r.Period, 100*time.Millisecond)
			}
			probe = clk.NewTimer(interval)
			in.publish(u, &st, true)
		}
	}
}

// probe runs one round of readiness checks of the proxy and the program.
func (in *instance) probe(u *Unit, r Readiness, st *runState) {
	apply := func(err error, ready *bool, fails *int) {
		if err == nil {
			*ready, *fails = true, 0
			return
		}
		*fails++
		if *fails >= r.FailureThreshold {
			*ready = false
		}
	}
	if st.proxy != nil {
		err := in.s.prober.httpGet(in.ctx, "http://127.0.0.1:"+strconv.Itoa(in.id.Ports.Admin)+"/ready")
		if in.ctx.Err() != nil {
			return
		}
		apply(err, &st.proxyReady, &st.proxyFails)
	}
	if st.app != nil {
		err := in.s.prober.check(in.ctx, r, in.id.Ports.App)
		if in.ctx.Err() != nil {
			return
		}
		st.lastProbe = ""
		if err != nil {
			st.lastProbe = err.Error()
		}
		apply(err, &st.appReady, &st.appFails)
	}
	if st.app != nil && st.wasReady {
		switch {
		case st.appReady:
			st.unreadySince = time.Time{}
		case st.unreadySince.IsZero():
			st.unreadySince = in.s.opts.Clock.Now()
		case in.s.opts.Clock.Now().Sub(st.unreadySince) >= in.hungAfter(r):
			// Hung: it was ready and has failed its checks for too long.
			// Killing it lets the exit path restart it with backoff (its
			// registry entry is already unready, so no traffic is lost).
			in.event("hung: not ready for %s (%s); killing it", in.hungAfter(r), st.lastProbe)
			st.app.signalGroup(syscall.SIGKILL)
			st.unreadySince = time.Time{}
		}
	}
	now := in.ready(u, st)
	switch {
	case now && !st.lastReady:
		in.event("ready")
	case !now && st.lastReady && st.app != nil && !st.appReady:
		in.event("unready (%s)", st.lastProbe)
	case !now && st.lastReady:
		in.event("unready (proxy not ready)")
	}
	st.lastReady = now
	if now {
		st.wasReady = true
	}
}

// hungAfter is how long a once-ready program may stay unready before it is
// restarted.
func (in *instance) hungAfter(r Readiness) time.Duration {
	if d := in.s.opts.HungAfter; d > 0 {
		return d
	}
	return max(5*time.Second, 5*r.Period)
}

// ready: the program passed readiness and the proxy is ready.
func (in *instance) ready(u *Unit, st *runState) bool {
	if u.App != nil && (st.app == nil || !st.appReady) {
		return false
	}
	return u.Proxy == nil || (st.proxy != nil && st.proxyReady)
}

// nextBackoff is the delay before restarting a program that ran for ran.
func (in *instance) nextBackoff(prev, ran time.Duration) time.Duration {
	o := &in.s.opts
	if prev == 0 || ran >= o.BackoffReset {
		return o.BackoffInitial
	}
	return min(2*prev, o.BackoffMax)
}

// appCommand is the program's command with the instance's environment.
func (in *instance) appCommand(u *Unit) Command {
	c := *u.App
	env := []string{
		"PORT=" + strconv.Itoa(in.id.Ports.App),
		"WEFT_NAMESPACE=" + in.id.Namespace,
		"WEFT_WORKLOAD=" + in.id.Unit,
		"WEFT_INSTANCE=" + in.id.Name,
	}
	if u.Proxy != nil && in.id.Ports.HTTPProxy != 0 {
		proxy := "http://127.0.0.1:" + strconv.Itoa(in.id.Ports.HTTPProxy)
		env = append(env, "HTTP_PROXY="+proxy, "http_proxy="+proxy, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	}
	c.Env = append(env, c.Env...)
	return c
}

// publish stores the status computed from st; when it changed (or force)
// it calls the OnReadiness hook, then wakes the waiters.
func (in *instance) publish(u *Unit, st *runState, force bool) {
	stopping := in.stopping()
	ns := in.snapshot()
	ready := !stopping && in.ready(u, st)
	ns.Ready = ready
	ns.SidecarReady = st.proxy != nil && st.proxyReady
	ns.PID, ns.SidecarPID = 0, 0
	ns.StartedAt = time.Time{}
	if st.app != nil {
		ns.PID, ns.StartedAt = st.app.pid, st.appStarted
	}
	if st.proxy != nil {
		ns.SidecarPID = st.proxy.pid
		if u.App == nil {
			ns.StartedAt = st.proxyStarted
		}
	}
	if u.App == nil {
		ns.PID = ns.SidecarPID
	}
	ns.Restarts, ns.SidecarRestarts = st.restarts, st.proxyRestarts
	ns.LastExit, ns.LastProbe = st.lastExit, st.lastProbe
	ns.NextRestart, ns.Backoff = st.nextRestart, ""
	if st.backoff > 0 {
		ns.Backoff = st.backoff.String()
	}
	switch {
	case stopping:
		ns.State = StateStopping
	case st.appTimer != nil || (u.App == nil && st.proxyTimer != nil):
		ns.State = StateBackoff
	case ready:
		ns.State = StateReady
	case st.wasReady:
		ns.State = StateUnready
	default:
		ns.State = StateStarting
	}
	in.mu.Lock()
	changed := ns != in.status
	in.status = ns
	in.mu.Unlock()
	// The hook runs before the waiters wake: whoever sees the new status
	// in Wait also sees what the hook did with it (the registration's
	// readiness, under weft up).
	if (changed || force) && in.s.opts.OnReadiness != nil {
		in.s.opts.OnReadiness(u, ns)
	}
	if changed {
		in.s.notify()
	}
}

func (in *instance) event(format string, args ...any) {
	if in.s.opts.OnEvent == nil {
		return
	}
	in.s.opts.OnEvent(Event{Time: in.s.opts.Clock.Now(), Instance: in.id, Message: fmt.Sprintf(format, args...)})
}

// startApp starts the instance's program. With SupervisorOptions.OnAppLine
// its stdout and stderr are split into lines separately, each line going
// to the log sink whole and to the hook with its stream.
func (in *instance) startApp(u *Unit) (*process, error) {
	hook := in.s.opts.OnAppLine
	if hook == nil {
		return startProcess(in.appCommand(u), in.appLog)
	}
	now := in.s.opts.Clock.Now
	stream := func(name string) *streamLines {
		return &streamLines{sink: in.appLog, emit: func(line string) { hook(in.id, name, line, now()) }}
	}
	return startProcessStreams(in.appCommand(u), stream("stdout"), stream("stderr"))
}
