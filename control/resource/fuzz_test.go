package resource

import (
	"context"
	"os"
	"testing"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
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
		paHead + "  selector: {matchLabels: {app: a}}\n  mtls: {mode: STRICT}\n",
		authHead + "  action: DENY\n  rules:\n  - from: [{source: {principals: [\"td/ns/a/sa/*\"], notNamespaces: [\"*-x\"]}}]\n" +
			"    to: [{operation: {paths: [\"/u/{*}/{**}\", \"*.png\"], ports: [\"80\"], hosts: [\"*.a\"]}}]\n" +
			"    when: [{key: \"request.auth.claims[a][b]\", values: [x]}, {key: \"request.headers[x]\", notValues: [\"*\"]}]\n",
		raHead + "  jwtRules:\n  - {issuer: a, jwks: '{\"keys\": [{\"kty\": \"EC\"}]}', fromHeaders: [{name: x, prefix: \"B \"}]}\n  - {issuer: b, jwksUri: \"http://[::1]/k\"}\n",
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

func FuzzParseConditionKey(f *testing.F) {
	for _, s := range []string{"request.headers[x-a]", "request.auth.claims[a][b]", "request.auth.claims[]", "request.auth.claims[a]b",
		"source.namespace", "request.headers[a][b]", "request.headers[", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		attr, names, err := v1alpha1.ParseConditionKey(key)
		if err != nil {
			return
		}
		back := string(attr)
		for _, n := range names {
			back += "[" + n + "]"
		}
		if back != key {
			t.Fatalf("ParseConditionKey(%q) = %q %q: does not rebuild the key (%q)", key, attr, names, back)
		}
	})
}
