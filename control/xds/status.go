package xds

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ProxyStatus is the state of one connected proxy, as shown by
// `weft get proxies`.
type ProxyStatus struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Workload  string `json:"workload,omitempty"`
	Service   string `json:"service,omitempty"`
	Role      Role   `json:"role"`
	// Address is the sidecar's instance address, if it declared one.
	Address string `json:"address,omitempty"`
	// AdminAddr is the host:port of the proxy's admin listener (node
	// metadata admin_addr), if it declared one.
	AdminAddr string `json:"adminAddr,omitempty"`
	// Subject names the token the proxy authenticated with.
	Subject string `json:"subject,omitempty"`
	// Protocol is "delta" or "sotw" (of the most recent stream).
	Protocol    string    `json:"protocol"`
	Streams     int       `json:"streams"`
	ConnectedAt time.Time `json:"connectedAt"`
	// ConfigVersion counts the configurations computed for the proxy.
	ConfigVersion uint64 `json:"configVersion"`
	// Synced is true when every type's last sent version was ACKed.
	Synced bool `json:"synced"`
	// LastAck is the time of the most recent ACK of any type.
	LastAck time.Time `json:"lastAck,omitzero"`
	// LastNack is the reason of the most recent NACK of any type.
	LastNack string `json:"lastNack,omitempty"`
	// TranslateError is the last error computing the proxy's
	// configuration; the proxy keeps its previous one meanwhile.
	TranslateError string       `json:"translateError,omitempty"`
	Types          []TypeStatus `json:"types"`
}

// TypeStatus is the push state of one resource type for one proxy.
type TypeStatus struct {
	// Type is the short type name ("Cluster", "ClusterLoadAssignment", ...).
	Type         string    `json:"type"`
	SentVersion  string    `json:"sentVersion,omitempty"`
	SentAt       time.Time `json:"sentAt,omitzero"`
	AckedVersion string    `json:"ackedVersion,omitempty"`
	AckedAt      time.Time `json:"ackedAt,omitzero"`
	NackVersion  string    `json:"nackVersion,omitempty"`
	NackReason   string    `json:"nackReason,omitempty"`
	NackAt       time.Time `json:"nackAt,omitzero"`
}

// typeState is TypeStatus plus the pending push used for the latency
// metric. Guarded by proxy.statusMu.
type typeState struct {
	TypeStatus
	pendingVersion string
	pendingSince   time.Time
}

// Proxies returns the status of every connected proxy, sorted by id. It is
// safe for concurrent use.
func (s *Server) Proxies() []ProxyStatus {
	s.mu.Lock()
	list := make([]*proxy, 0, len(s.proxies))
	for _, p := range s.proxies {
		list = append(list, p)
	}
	s.mu.Unlock()
	out := make([]ProxyStatus, 0, len(list))
	for _, p := range list {
		out = append(out, p.status())
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (p *proxy) status() ProxyStatus {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	st := ProxyStatus{
		ID:             p.info.NodeID,
		Namespace:      p.info.Namespace,
		Workload:       p.info.Workload,
		Service:        p.info.Service,
		Role:           p.info.Role,
		AdminAddr:      p.info.AdminAddr,
		Subject:        p.identity.Subject,
		Protocol:       p.protocol,
		Streams:        p.streams,
		ConnectedAt:    p.connectedAt,
		ConfigVersion:  p.version,
		TranslateError: p.translateErr,
		Synced:         true,
	}
	if p.info.InstanceAddr.IsValid() {
		st.Address = p.info.InstanceAddr.String()
	}
	var nackAt time.Time
	for _, t := range typeURLs {
		ts := p.types[t]
		if ts == nil {
			continue
		}
		st.Types = append(st.Types, ts.TypeStatus)
		if ts.SentVersion != ts.AckedVersion {
			st.Synced = false
		}
		if ts.AckedAt.After(st.LastAck) {
			st.LastAck = ts.AckedAt
		}
		if ts.NackAt.After(nackAt) {
			nackAt, st.LastNack = ts.NackAt, ts.NackReason
		}
	}
	return st
}

// ProxyList is the JSON document served at /api/v1/proxies.
type ProxyList struct {
	Kind  string        `json:"kind"` // "ProxyList"
	Items []ProxyStatus `json:"items"`
}

// ProxiesHandler serves Proxies() as JSON (a ProxyList) for GET
// /api/v1/proxies. It is safe for concurrent use.
func (s *Server) ProxiesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := json.MarshalIndent(ProxyList{Kind: "ProxyList", Items: s.Proxies()}, "", "  ")
		if err != nil {
			http.Error(w, "encode proxies: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
}
