package proxy

import (
	"encoding/json"
	"io"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Ready reports whether a configuration with listeners (and the route
// configurations they read over RDS) has been applied.
//
// With an identity source, a proxy of a mesh with mTLS (it received SDS
// secrets) is ready only once it holds its certificate too: before that
// its inbound listener refuses every mesh caller.
func (p *Proxy) Ready() bool {
	select {
	case <-p.ready:
	default:
		return false
	}
	if p.opts.Identity == nil {
		return true
	}
	if m := p.secrets.xds.Load(); m == nil || len(*m) == 0 {
		return true
	}
	_, err := p.opts.Identity.Certificate()
	return err == nil
}

// WriteConfigDump writes the accepted resources of every type as JSON:
// {"version": N, "resources": {"<type URL>": {"<name>": <resource>}}}.
func (p *Proxy) WriteConfigDump(w io.Writer) error {
	p.mu.Lock()
	version := p.version
	raw := p.accepted.raw
	p.mu.Unlock()
	out := struct {
		Version   uint64                                `json:"version"`
		Resources map[string]map[string]json.RawMessage `json:"resources"`
	}{Version: version, Resources: map[string]map[string]json.RawMessage{}}
	for typeURL, set := range raw {
		m := make(map[string]json.RawMessage, len(set))
		for name, msg := range set {
			if sec, ok := msg.(*tlsv3.Secret); ok && sec.GetTlsCertificate().GetPrivateKey() != nil {
				// Never dump a private key (Envoy redacts it too).
				sec = proto.Clone(sec).(*tlsv3.Secret)
				sec.GetTlsCertificate().PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "[redacted]"}}
				msg = sec
			}
			b, err := protojson.Marshal(msg)
			if err != nil {
				return err
			}
			m[name] = b
		}
		out.Resources[typeURL] = m
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
