package v1alpha1

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "millis", in: `"250ms"`, want: 250 * time.Millisecond},
		{name: "compound", in: `"1m30s"`, want: 90 * time.Second},
		{name: "null keeps zero", in: `null`, want: 0},
		{name: "number", in: `5`, wantErr: `invalid duration 5: want a string such as "250ms"`},
		{name: "no unit", in: `"5"`, wantErr: `invalid duration "5": want a number with a unit`},
		{name: "garbage", in: `"soon"`, wantErr: `invalid duration "soon"`},
		{name: "object", in: `{}`, wantErr: `invalid duration {}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Duration != tc.want {
				t.Fatalf("got %v, want %v", d.Duration, tc.want)
			}
		})
	}
}

func TestDurationOmitzero(t *testing.T) {
	b, err := json.Marshal(BackendPolicySpec{TargetRef: TargetRef{Name: "x"}, RequestTimeout: D(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"targetRef":{"name":"x"},"requestTimeout":"2s"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"250ms"`, `"1h2m3.5s"`, `"-1s"`, `5`, `"5"`, `null`, `"9223372036854775807ns"`, `""`, `"1e3s"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %v: %v", d, err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if back != d {
			t.Fatalf("round trip %s: got %v, want %v", b, back, d)
		}
	})
}

func TestEnvVars(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    EnvVars
		wantErr string
	}{
		{name: "list", in: `[{"name":"A","value":"1"},{"name":"B","value":""}]`, want: EnvVars{{"A", "1"}, {"B", ""}}},
		{name: "map sorted", in: `{"Z":"26","A":"1"}`, want: EnvVars{{"A", "1"}, {"Z", "26"}}},
		{name: "map non-string", in: `{"A":1}`, wantErr: "env as a map: values must be strings"},
		{name: "list unknown field", in: `[{"name":"A","val":"1"}]`, wantErr: `unknown field "val"`},
		{name: "scalar", in: `"A=1"`, wantErr: `env: want a list of {name, value} or a map`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e EnvVars
			err := json.Unmarshal([]byte(tc.in), &e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, tc.want) {
				t.Fatalf("got %v, want %v", e, tc.want)
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	svc := Service{Spec: ServiceSpec{Ports: []ServicePort{{Port: 80}}}}
	svc.Name = "catalog"
	svc.SetDefaults()
	if want := (ServicePort{Name: "http", Port: 80, TargetPort: 80, Protocol: ProtocolHTTP}); svc.Spec.Ports[0] != want {
		t.Errorf("service port = %+v, want %+v", svc.Spec.Ports[0], want)
	}
	if svc.Spec.Visibility != VisibilityMesh || svc.Spec.Workload != "catalog" {
		t.Errorf("service defaults = %+v", svc.Spec)
	}

	wl := Workload{Spec: WorkloadSpec{Readiness: &Readiness{TCP: true}, Upstreams: []Upstream{{Service: "cart", Port: 9001}}}}
	wl.Name, wl.Namespace = "frontend", "shop"
	wl.SetDefaults()
	if wl.Spec.ReplicaCount() != 1 || wl.Spec.ServiceAccount != "default" || wl.Spec.Service != "frontend" ||
		wl.Spec.Labels["app"] != "frontend" || wl.Spec.Upstreams[0].Namespace != "shop" ||
		wl.Spec.Readiness.Period.Duration != time.Second || wl.Spec.Readiness.FailureThreshold != 3 {
		t.Errorf("workload defaults = %+v", wl.Spec)
	}

	bp := BackendPolicy{Spec: BackendPolicySpec{TargetRef: TargetRef{Name: "catalog"}, Retries: &Retries{}}}
	bp.SetDefaults()
	r := bp.Spec.Retries
	if bp.Spec.TargetRef.Kind != "Service" || bp.Spec.TargetRef.Group != "weft.dev" || bp.Spec.ConnectTimeout.Duration != 5*time.Second ||
		*r.Attempts != 2 || !reflect.DeepEqual(r.RetryOn, DefaultRetryOn) ||
		r.Backoff.Base.Duration != 25*time.Millisecond || r.Backoff.Max.Duration != 250*time.Millisecond {
		t.Errorf("backend policy defaults = %+v retries %+v", bp.Spec, r)
	}
}

func TestResilienceDefaults(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name  string
		in    BackendPolicySpec
		check func(t *testing.T, s BackendPolicySpec)
	}{
		{
			name: "empty blocks get every default",
			in: BackendPolicySpec{
				RetryBudget:      &RetryBudget{},
				OutlierDetection: &OutlierDetection{SuccessRate: &SuccessRateDetection{}, FailurePercentage: &FailurePercentageDetection{}},
				HealthCheck:      &HealthCheck{HTTP: &HTTPHealthCheck{Path: "/h"}},
			},
			check: func(t *testing.T, s BackendPolicySpec) {
				if *s.RetryBudget.Percent != 20 || *s.RetryBudget.MinRetryConcurrency != 3 {
					t.Errorf("retry budget = %d%% min %d", *s.RetryBudget.Percent, *s.RetryBudget.MinRetryConcurrency)
				}
				o := s.OutlierDetection
				if *o.Consecutive5xx != 5 || o.ConsecutiveGatewayErrors != nil || o.ConsecutiveLocalOriginFailures != nil ||
					o.Interval.Duration != 10*time.Second || o.BaseEjectionTime.Duration != 30*time.Second ||
					o.MaxEjectionTime.Duration != 300*time.Second || *o.MaxEjectionPercent != 10 || *o.PanicThreshold != 50 {
					t.Errorf("outlier detection = %+v", o)
				}
				if sr := o.SuccessRate; *sr.MinimumHosts != 5 || *sr.RequestVolume != 100 || *sr.StdevFactor != 1900 {
					t.Errorf("success rate = %+v", sr)
				}
				if fp := o.FailurePercentage; *fp.Threshold != 85 || *fp.MinimumHosts != 5 || *fp.RequestVolume != 50 {
					t.Errorf("failure percentage = %+v", fp)
				}
				h := s.HealthCheck
				if h.Interval.Duration != 5*time.Second || h.Timeout.Duration != time.Second || *h.UnhealthyThreshold != 2 ||
					*h.HealthyThreshold != 1 || !reflect.DeepEqual(h.HTTP.ExpectedStatuses, []int32{200}) {
					t.Errorf("health check = %+v http %+v", h, h.HTTP)
				}
			},
		},
		{
			name: "set values stay, long base ejection raises the max",
			in: BackendPolicySpec{
				RetryBudget:      &RetryBudget{Percent: i32(0), MinRetryConcurrency: i32(0)},
				OutlierDetection: &OutlierDetection{Consecutive5xx: i32(0), BaseEjectionTime: D(10 * time.Minute), PanicThreshold: i32(0)},
				HealthCheck:      &HealthCheck{TCP: true, Interval: D(time.Second)},
			},
			check: func(t *testing.T, s BackendPolicySpec) {
				if *s.RetryBudget.Percent != 0 || *s.RetryBudget.MinRetryConcurrency != 0 {
					t.Errorf("retry budget overwritten: %+v", s.RetryBudget)
				}
				o := s.OutlierDetection
				if *o.Consecutive5xx != 0 || *o.PanicThreshold != 0 || o.MaxEjectionTime.Duration != 10*time.Minute {
					t.Errorf("outlier detection = %+v", o)
				}
				if s.HealthCheck.Interval.Duration != time.Second || s.HealthCheck.HTTP != nil {
					t.Errorf("health check = %+v", s.HealthCheck)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.in
			s.TargetRef.Name = "x"
			s.SetDefaults()
			tc.check(t, s)
		})
	}
}

func TestFaultInjectionDefaults(t *testing.T) {
	f := FaultInjection{Spec: FaultInjectionSpec{Delay: &FaultDelay{FixedDelay: D(time.Second)}, Abort: &FaultAbort{}}}
	f.SetDefaults()
	if *f.Spec.Delay.Percent != 100 || *f.Spec.Abort.Percent != 100 {
		t.Errorf("fault defaults = %+v %+v", f.Spec.Delay, f.Spec.Abort)
	}
	var empty FaultInjection
	empty.SetDefaults()
	if empty.Spec.Delay != nil || empty.Spec.Abort != nil {
		t.Errorf("defaults created blocks: %+v", empty.Spec)
	}
}
