// Package alert evaluates AlertRules: at every tick each rule's metric is
// read over its window (from the telemetry hub, through Query), compared
// with its threshold, and the rule's state moves with hysteresis:
//
//	inactive ──cond──▶ pending ──cond held For──▶ firing ─┐
//	    ▲                 │ !cond                    │ !cond
//	    └─────────────────┘                          ▼
//	    └──────────────!cond held For────────── resolving ──cond──▶ firing
//
// Only the firing and resolved transitions notify (the dashboard reads
// Alerts; webhooks get a POST). A metric that cannot be read, or a window
// with fewer requests than the rule's minimum, leaves the state as it is.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
)

// State of a rule.
type State string

// States.
const (
	Inactive  State = "inactive"
	Pending   State = "pending"
	Firing    State = "firing"
	Resolving State = "resolving"
)

// Query reads metric m of target t in namespace ns over the window ending
// at now; requests is how many requests the window holds. ok is false when
// nothing is known about the target.
type Query func(ns string, t v1alpha1.AlertTarget, m v1alpha1.AlertMetric, window time.Duration, now time.Time) (value, requests float64, ok bool)

// Alert is a rule's current state, as the API and the dashboard show it.
type Alert struct {
	Namespace string  `json:"namespace"`
	Name      string  `json:"name"`
	Target    string  `json:"target"` // "service catalog", "workload x", "edge a -> b"
	Metric    string  `json:"metric"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Severity  string  `json:"severity"`
	Summary   string  `json:"summary,omitempty"`
	State     State   `json:"state"`
	// Value is the last value read (NaN-free: 0 when never read), with
	// the requests of its window.
	Value    float64 `json:"value"`
	Requests float64 `json:"requests"`
	// NoData is set while nothing is known about the target (no series
	// matches it: a Service reached only through route backends is
	// watched through those backends' workloads).
	NoData bool `json:"noData,omitempty"`
	// Since is when the current state began; FiredAt/ResolvedAt the last
	// transitions to firing and back.
	Since      time.Time `json:"since"`
	FiredAt    time.Time `json:"firedAt,omitzero"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	Evaluated  time.Time `json:"evaluated,omitzero"`
}

// Event is a notification: Kind "firing" or "resolved".
type Event struct {
	Kind  string `json:"kind"`
	Alert Alert  `json:"alert"`
}

// Options configure an Evaluator.
type Options struct {
	// Query reads metrics. Required.
	Query Query
	// Notify, if set, is called for every event (from Evaluate).
	Notify func(Event)
	// HTTPClient posts webhooks; default a client with a 5 s timeout.
	HTTPClient *http.Client
	// Logger; default slog.Default().
	Logger *slog.Logger
	// History bounds the events kept for Events(); default 200.
	History int
}

// rule is one AlertRule with its state.
type rule struct {
	spec  *v1alpha1.AlertRuleSpec
	gen   int64
	alert Alert
	mark  time.Time // start of the current pending/resolving period
}

// Evaluator holds the rules and their states. Its methods are safe for
// concurrent use.
type Evaluator struct {
	opts   Options
	mu     sync.Mutex
	rules  map[string]*rule // "ns/name"
	events []Event
	// queue holds webhook notifications not sent yet; sending is set
	// while the sender goroutine runs.
	queue   []delivery
	sending bool
	wg      sync.WaitGroup // the sender
}

// New returns an Evaluator without rules.
func New(opts Options) *Evaluator {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.History <= 0 {
		opts.History = 200
	}
	opts.Logger = opts.Logger.With("component", "alert")
	return &Evaluator{opts: opts, rules: map[string]*rule{}}
}

// SetRules replaces the rules with the AlertRules among objs. A rule whose
// spec did not change (same generation) keeps its state; a changed or new
// one starts inactive.
func (e *Evaluator) SetRules(objs []resource.Object) {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := map[string]*rule{}
	for i := range objs {
		o := &objs[i]
		spec := o.AlertRule()
		if spec == nil {
			continue
		}
		key := o.Namespace + "/" + o.Name
		if old := e.rules[key]; old != nil && old.gen == o.Generation && o.Generation != 0 {
			next[key] = old
			continue
		}
		next[key] = &rule{spec: spec, gen: o.Generation, alert: Alert{
			Namespace: o.Namespace, Name: o.Name, Target: targetString(spec.Target), Metric: string(spec.Metric),
			Op: string(spec.Op), Threshold: spec.Threshold, Severity: spec.Severity, Summary: spec.Summary, State: Inactive,
		}}
	}
	e.rules = next
}

func targetString(t v1alpha1.AlertTarget) string {
	switch {
	case t.Service != "":
		return "service " + t.Service
	case t.Workload != "":
		return "workload " + t.Workload
	case t.Edge != nil:
		return "edge " + t.Edge.From + " -> " + t.Edge.To
	}
	return ""
}

// Evaluate runs one tick at now.
func (e *Evaluator) Evaluate(now time.Time) {
	e.mu.Lock()
	var fired []Event
	for _, r := range e.rules {
		if ev, ok := e.step(r, now); ok {
			fired = append(fired, ev)
		}
	}
	for _, ev := range fired {
		e.events = append(e.events, ev)
	}
	if over := len(e.events) - e.opts.History; over > 0 {
		e.events = slices.Delete(e.events, 0, over)
	}
	e.mu.Unlock()
	slices.SortFunc(fired, func(a, b Event) int {
		return strings.Compare(a.Alert.Namespace+"/"+a.Alert.Name, b.Alert.Namespace+"/"+b.Alert.Name)
	})
	for _, ev := range fired {
		e.opts.Logger.Info("alert "+ev.Kind, "rule", ev.Alert.Namespace+"/"+ev.Alert.Name, "target", ev.Alert.Target,
			"metric", ev.Alert.Metric, "value", ev.Alert.Value, "threshold", ev.Alert.Threshold)
		if e.opts.Notify != nil {
			e.opts.Notify(ev)
		}
		e.post(ev)
	}
}

// step advances one rule; it returns the event of a firing or resolved
// transition.
func (e *Evaluator) step(r *rule, now time.Time) (Event, bool) {
	s := r.spec
	v, n, ok := e.opts.Query(r.alert.Namespace, s.Target, s.Metric, s.Window.Duration, now)
	r.alert.Evaluated = now
	r.alert.NoData = !ok
	if !ok || (s.Metric != v1alpha1.AlertRequestRate && s.MinRequests != nil && n < float64(*s.MinRequests)) {
		return Event{}, false
	}
	r.alert.Value, r.alert.Requests = v, n
	cond := v > s.Threshold
	if s.Op == v1alpha1.AlertBelow {
		cond = v < s.Threshold
	}
	a := &r.alert
	switch a.State {
	case Inactive:
		if cond {
			a.State, a.Since, r.mark = Pending, now, now
			if s.For.Duration == 0 {
				return e.fire(r, now), true
			}
		}
	case Pending:
		switch {
		case !cond:
			a.State, a.Since = Inactive, now
		case now.Sub(r.mark) >= s.For.Duration:
			return e.fire(r, now), true
		}
	case Firing:
		if !cond {
			a.State, a.Since, r.mark = Resolving, now, now
			if s.For.Duration == 0 {
				return e.resolve(r, now), true
			}
		}
	case Resolving:
		switch {
		case cond:
			a.State, a.Since = Firing, a.FiredAt
		case now.Sub(r.mark) >= s.For.Duration:
			return e.resolve(r, now), true
		}
	}
	return Event{}, false
}

func (e *Evaluator) fire(r *rule, now time.Time) Event {
	r.alert.State, r.alert.Since, r.alert.FiredAt = Firing, now, now
	return Event{Kind: "firing", Alert: r.alert}
}

func (e *Evaluator) resolve(r *rule, now time.Time) Event {
	r.alert.State, r.alert.Since, r.alert.ResolvedAt = Inactive, now, now
	return Event{Kind: "resolved", Alert: r.alert}
}

// post queues ev for the rule's webhook, if any. One sender delivers the
// queue in order (a resolution never overtakes its firing), with one retry
// per notification.
func (e *Evaluator) post(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.rules[ev.Alert.Namespace+"/"+ev.Alert.Name]
	if r == nil || r.spec.Webhook == nil {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	e.queue = append(e.queue, delivery{url: r.spec.Webhook.URL, body: body})
	if e.sending {
		return
	}
	e.sending = true
	e.wg.Add(1)
	go e.send()
}

// delivery is one queued webhook notification.
type delivery struct {
	url  string
	body []byte
}

// send drains the queue.
func (e *Evaluator) send() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.sending = false
			e.mu.Unlock()
			return
		}
		d := e.queue[0]
		e.queue = e.queue[1:]
		e.mu.Unlock()
		var last error
		for range 2 {
			resp, err := e.opts.HTTPClient.Post(d.url, "application/json", bytes.NewReader(d.body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					last = nil
					break
				}
				err = fmt.Errorf("status %s", resp.Status)
			}
			last = err
		}
		if last != nil {
			e.opts.Logger.Warn("alert webhook failed", "url", d.url, "err", last)
		}
	}
}

// Wait waits for webhook posts in flight (tests, shutdown).
func (e *Evaluator) Wait() { e.wg.Wait() }

// Alerts returns every rule's state, sorted by namespace and name.
func (e *Evaluator) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alert, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, r.alert)
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	return out
}

// Events returns the recent notifications, oldest first.
func (e *Evaluator) Events() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

// Run evaluates every period until ctx ends.
func (e *Evaluator) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.Evaluate(now)
		}
	}
}

// Handler serves GET /api/v1/alerts: {"alerts": [...], "events": [...]}
// (empty lists, never null).
func (e *Evaluator) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		events := e.Events()
		if events == nil {
			events = []Event{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Alerts []Alert `json:"alerts"`
			Events []Event `json:"events"`
		}{e.Alerts(), events})
	})
}
