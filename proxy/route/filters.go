package route

import (
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/filter/fault"
)

// Mirror is one request_mirror_policies entry: a copy of the request is
// sent to Cluster (fire and forget, host suffixed "-shadow") for PerMillion
// requests out of a million.
type Mirror struct {
	Cluster    string
	PerMillion uint32
}

// Hit reports whether the request drawing r is mirrored.
func (m Mirror) Hit(r uint64) bool { return r%1_000_000 < uint64(m.PerMillion) }

func mirrorOf(mp *routev3.RouteAction_RequestMirrorPolicy, p string) (Mirror, error) {
	if err := checkFields(mp, p, "cluster", "runtime_fraction", "trace_sampled"); err != nil {
		return Mirror{}, err
	}
	if mp.GetCluster() == "" {
		return Mirror{}, fieldErr(join(p, "cluster"), "required")
	}
	m := Mirror{Cluster: mp.GetCluster(), PerMillion: 1_000_000}
	if rf := mp.GetRuntimeFraction(); rf != nil {
		if err := checkFields(rf, join(p, "runtime_fraction"), "default_value", "runtime_key"); err != nil {
			return Mirror{}, err
		}
		dv := rf.GetDefaultValue()
		scale := map[typev3.FractionalPercent_DenominatorType]uint32{
			typev3.FractionalPercent_HUNDRED: 10_000, typev3.FractionalPercent_TEN_THOUSAND: 100, typev3.FractionalPercent_MILLION: 1,
		}[dv.GetDenominator()]
		m.PerMillion = min(dv.GetNumerator()*scale, 1_000_000)
	}
	return m, nil
}

// perFilterFault decodes typed_per_filter_config: only the fault filter's
// config is supported.
func perFilterFault(cfgs map[string]*anypb.Any, p string) (*fault.Fault, error) {
	var out *fault.Fault
	for name, a := range cfgs {
		fp := fmt.Sprintf("%s[%q]", p, name)
		if name != fault.Name {
			return nil, &FieldError{Path: fp, Err: ErrUnsupported}
		}
		f, err := fault.DecodeAny(a)
		if err != nil {
			return nil, fieldErr(fp, "%s", strings.TrimPrefix(err.Error(), fault.Name+": "))
		}
		out = f
	}
	return out, nil
}
