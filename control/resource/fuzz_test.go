package resource

import (
	"context"
	"os"
	"testing"
)

func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("testdata/shop.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		svcA, gwEdge, routeHead + "  rules:\n  - backendRefs: [{name: a, port: 80, weight: -1}]\n",
		grpcHead + "  rules: [{matches: [{method: {type: RegularExpression, service: \"(\"}}]}]\n",
		policyHead + "  retries: {backoff: {base: 1s}}\n",
		policyHead + "  retryBudget: {}\n  outlierDetection: {successRate: {}, failurePercentage: {threshold: 5}}\n  healthCheck: {http: {path: /h}}\n",
		faultHead + "  delay: {fixedDelay: 1s}\n  abort: {httpStatus: 503, percent: 5}\n  headers: [{name: x, present: true}]\n",
		routeHead + "  rules:\n  - filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}, {type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, fraction: {numerator: 1}}}]\n",
		"apiVersion: v1\nkind: List\nitems: [{apiVersion: weft.dev/v1alpha1, kind: Workload, metadata: {name: w}, spec: {env: {A: b}}}]\n",
		`{"apiVersion":"weft.dev/v1alpha1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}}{"kind":1}`,
		"---\n---\n", "kind: [\n", "a: &a [*a]\n", "? [a]\n: b\n", "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode("fuzz", data)
		if err != nil {
			if objs != nil {
				t.Fatalf("objects with an error")
			}
			_ = err.Error()
			return
		}
		_, err = Validate(context.Background(), objs, sliceLister(objs))
		if err != nil {
			_ = err.Error()
		}
		for i := range objs {
			b, err := objs[i].MarshalJSON()
			if err != nil {
				t.Fatalf("marshal %s: %v", objs[i].Key(), err)
			}
			var back Object
			if err := back.UnmarshalJSON(b); err != nil {
				t.Fatalf("unmarshal %s: %v\n%s", objs[i].Key(), err, b)
			}
		}
	})
}

func BenchmarkDecodeShop(b *testing.B) {
	data, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode("shop.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateShop(b *testing.B) {
	data, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		b.Fatal(err)
	}
	objs, err := Decode("shop.yaml", data)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(ctx, objs, sliceLister(objs)); err != nil {
			b.Fatal(err)
		}
	}
}
