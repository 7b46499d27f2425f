package proxy

import (
	"encoding/json"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
)

// Ready reports whether a configuration with listeners has been applied.
func (p *Proxy) Ready() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
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
