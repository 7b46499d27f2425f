package alert

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
)

func rules(t *testing.T, doc string) []resource.Object {
	t.Helper()
	objs, err := resource.Decode("rules.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for i := range objs {
		objs[i].Generation = 1
	}
	return objs
}

const successRule = `apiVersion: weft.dev/v1alpha1
kind: AlertRule
metadata: {name: catalog-errors, namespace: shop}
spec:
  target: {service: catalog}
  metric: successRate
  threshold: 0.99
  window: 30s
  for: 20s
  webhook: {url: %q}
`

// series answers Query from a table of (offset → value) steps.
type series struct {
	start    time.Time
	steps    []step
	requests float64
}

type step struct {
	at    time.Duration
	value float64
}

func (s *series) query(_ string, _ v1alpha1.AlertTarget, _ v1alpha1.AlertMetric, _ time.Duration, now time.Time) (float64, float64, bool) {
	v := s.steps[0].value
	for _, st := range s.steps {
		if now.Sub(s.start) >= st.at {
			v = st.value
		}
	}
	return v, s.requests, true
}

// TestFiresAndResolvesWithHysteresis drives a success rate through a dip
// too short to fire, a long outage, a flap inside the resolution period and
// a recovery, at 5 s ticks.
func TestFiresAndResolvesWithHysteresis(t *testing.T) {
	var mu sync.Mutex
	var hooks []Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		hooks = append(hooks, ev)
		mu.Unlock()
	}))
	defer hook.Close()

	start := time.Unix(1_800_000_000, 0)
	s := &series{start: start, requests: 100, steps: []step{
		{0, 1.0},
		{10 * time.Second, 0.5},  // a 10 s dip: shorter than for (20 s)
		{20 * time.Second, 1.0},  //
		{60 * time.Second, 0.8},  // outage from 60 s
		{120 * time.Second, 1.0}, // recovers at 120 s ...
		{130 * time.Second, 0.9}, // ... flaps for 5 s inside the 20 s resolution period
		{135 * time.Second, 1.0}, // and stays good
	}}
	var events []Event
	e := New(Options{Query: s.query, Notify: func(ev Event) { events = append(events, ev) }})
	e.SetRules(rules(t, fmt.Sprintf(successRule, hook.URL)))
	var states []State
	for off := time.Duration(0); off <= 200*time.Second; off += 5 * time.Second {
		e.Evaluate(start.Add(off))
		states = append(states, e.Alerts()[0].State)
	}
	e.Wait()
	if len(events) != 2 || events[0].Kind != "firing" || events[1].Kind != "resolved" {
		t.Fatalf("events = %+v, want firing then resolved", events)
	}
	if got := events[0].Alert.FiredAt.Sub(start); got != 80*time.Second {
		t.Errorf("fired at +%v, want +80s (outage from 60 s held 20 s)", got)
	}
	if got := events[1].Alert.ResolvedAt.Sub(start); got != 155*time.Second {
		t.Errorf("resolved at +%v, want +155s (good from 135 s held 20 s; the flap at 130 s restarted the period)", got)
	}
	if events[0].Alert.Value != 0.8 || events[0].Alert.Requests != 100 {
		t.Errorf("firing alert carries value %v requests %v", events[0].Alert.Value, events[0].Alert.Requests)
	}
	// The 10 s dip went pending and back, never firing.
	if states[2] != Pending || states[4] != Inactive {
		t.Errorf("states during the dip: %v", states[:6])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 2 || hooks[0].Kind != "firing" || hooks[1].Kind != "resolved" || hooks[0].Alert.Name != "catalog-errors" {
		t.Fatalf("webhook got %+v", hooks)
	}
}

// TestIdleAndUnknownKeepState: below minRequests, or with nothing known,
// the state does not move.
func TestIdleAndUnknownKeepState(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	known := true
	requests := 100.0
	q := func(string, v1alpha1.AlertTarget, v1alpha1.AlertMetric, time.Duration, time.Time) (float64, float64, bool) {
		return 0.1, requests, known
	}
	e := New(Options{Query: q})
	e.SetRules(rules(t, fmt.Sprintf(successRule, "http://127.0.0.1:1/")))
	e.Evaluate(start)
	if st := e.Alerts()[0].State; st != Pending {
		t.Fatalf("state %s, want pending", st)
	}
	requests = 3 // below the default minimum of 10
	e.Evaluate(start.Add(time.Minute))
	known = false
	e.Evaluate(start.Add(2 * time.Minute))
	if st := e.Alerts()[0].State; st != Pending {
		t.Fatalf("state moved without data: %s", st)
	}
}

// TestSetRulesKeepsUnchangedState: reapplying the same generation keeps the
// firing state; a changed spec starts over.
func TestSetRulesKeepsUnchangedState(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	q := func(string, v1alpha1.AlertTarget, v1alpha1.AlertMetric, time.Duration, time.Time) (float64, float64, bool) {
		return 0.1, 100, true
	}
	e := New(Options{Query: q})
	objs := rules(t, fmt.Sprintf(successRule, "http://127.0.0.1:1/"))
	objs[0].AlertRule().Webhook = nil
	e.SetRules(objs)
	e.Evaluate(start)
	e.Evaluate(start.Add(30 * time.Second))
	if st := e.Alerts()[0].State; st != Firing {
		t.Fatalf("state %s, want firing", st)
	}
	e.SetRules(objs)
	if st := e.Alerts()[0].State; st != Firing {
		t.Fatalf("same generation: state %s, want firing kept", st)
	}
	objs[0].Generation = 2
	e.SetRules(objs)
	if st := e.Alerts()[0].State; st != Inactive {
		t.Fatalf("new generation: state %s, want inactive", st)
	}
}

// TestHandler: GET /api/v1/alerts answers empty lists (not null) before
// anything happened, then the rules' states and the notifications.
func TestHandler(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	q := func(string, v1alpha1.AlertTarget, v1alpha1.AlertMetric, time.Duration, time.Time) (float64, float64, bool) {
		return 0.5, 100, true
	}
	e := New(Options{Query: q})
	get := func() string {
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/alerts", nil))
		if ct := rec.Header().Get("Content-Type"); rec.Code != 200 || ct != "application/json" {
			t.Fatalf("status %d, content type %q", rec.Code, ct)
		}
		return rec.Body.String()
	}
	if got := get(); got != `{"alerts":[],"events":[]}`+"\n" {
		t.Fatalf("no rules: %s", got)
	}
	objs := rules(t, fmt.Sprintf(successRule, "http://127.0.0.1:1/"))
	objs[0].Spec.(*v1alpha1.AlertRuleSpec).Webhook = nil
	e.SetRules(objs)
	e.Evaluate(start)
	e.Evaluate(start.Add(20 * time.Second))
	var doc struct {
		Alerts []Alert `json:"alerts"`
		Events []Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(get()), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Alerts) != 1 || doc.Alerts[0].State != Firing || doc.Alerts[0].Value != 0.5 ||
		len(doc.Events) != 1 || doc.Events[0].Kind != "firing" || doc.Events[0].Alert.Name != "catalog-errors" {
		t.Fatalf("after firing: %+v", doc)
	}
}
