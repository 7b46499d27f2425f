package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// handshakeStats counts what the handshake mode's connections negotiated.
// It is safe for concurrent use.
type handshakeStats struct {
	resumed atomic.Int64
	mu      sync.Mutex
	version uint16
	curve   tls.CurveID
	cipher  uint16
	mixed   bool // connections negotiated different parameters
}

func (s *handshakeStats) record(cs tls.ConnectionState) {
	if cs.DidResume {
		s.resumed.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.version == 0:
		s.version, s.curve, s.cipher = cs.Version, cs.CurveID, cs.CipherSuite
	case s.version != cs.Version || s.curve != cs.CurveID || s.cipher != cs.CipherSuite:
		s.mixed = true
	}
}

// fields returns the key=value pairs appended to the output line: resumed
// connections, and the TLS version, key exchange group and cipher suite of
// the first connection (with "+mixed" when later ones differed).
func (s *handshakeStats) fields() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	version, group, cipher := "none", "none", "none"
	if s.version != 0 {
		version = strings.ReplaceAll(tls.VersionName(s.version), " ", "")
		cipher = tls.CipherSuiteName(s.cipher)
		if s.curve != 0 { // TLS 1.2 resumption negotiates no group
			group = s.curve.String()
		}
	}
	mixed := ""
	if s.mixed {
		mixed = "+mixed"
	}
	return fmt.Sprintf("resumed=%d tls=%s%s group=%s%s cipher=%s%s", s.resumed.Load(), version, mixed, group, mixed, cipher, mixed)
}

// curveNames are the key exchange groups -curves accepts.
var curveNames = map[string]tls.CurveID{
	"x25519":         tls.X25519,
	"x25519mlkem768": tls.X25519MLKEM768,
	"p256":           tls.CurveP256,
	"p384":           tls.CurveP384,
	"p521":           tls.CurveP521,
}

// parseCurves parses a comma-separated list of group names (case and '-'
// ignored: "X25519", "P-256"); "" means Go's defaults (nil).
func parseCurves(s string) ([]tls.CurveID, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ids []tls.CurveID
	for name := range strings.SplitSeq(s, ",") {
		key := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "-", ""))
		id, ok := curveNames[key]
		if !ok {
			return nil, fmt.Errorf("-curves: unknown group %q (want x25519, x25519mlkem768, p256, p384, p521)", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// handshakeConfig builds the client TLS configuration of the handshake
// mode: the client certificate, the server's chain verified against the CA
// file without a host name check (mesh leaves carry a SPIFFE URI only),
// ALPN http/1.1, and a session cache only when resume is set.
func handshakeConfig(o options) (*tls.Config, error) {
	if o.caFile == "" {
		return nil, errors.New("-mode handshake: -ca is required")
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, errors.New("-mode handshake: -cert and -key go together")
	}
	pem, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate found", o.caFile)
	}
	curves, err := parseCurves(o.curves)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		NextProtos:         []string{"http/1.1"},
		CurvePreferences:   curves,
		InsecureSkipVerify: true, // replaced by VerifyConnection: chain only, no host name
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			inters := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inters.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters})
			return err
		},
	}
	if o.certFile != "" {
		pair, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-cert/-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(o.workers)
	}
	return cfg, nil
}

// handshakeDoer returns a DoFunc that, per call, opens a new TCP connection
// to the target, completes a TLS handshake with the client certificate
// (a full one unless -resume), sends one GET with "Connection: close",
// reads the whole answer and closes.
func handshakeDoer(o options, stats *handshakeStats) (DoFunc, func(), error) {
	u, err := url.Parse(o.target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, nil, fmt.Errorf("-target %q: want https://host:port/path", o.target)
	}
	cfg, err := handshakeConfig(o)
	if err != nil {
		return nil, nil, err
	}
	path := u.RequestURI()
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n\r\n")
	dialer := &tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	do := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		c, err := dialer.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		tc := c.(*tls.Conn)
		if _, err := tc.Write(request); err != nil {
			return fmt.Errorf("write request: %w", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return fmt.Errorf("read response: %w", err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if o.size >= 0 && n != int64(o.size) {
			return fmt.Errorf("body %d bytes, want %d", n, o.size)
		}
		// Read after the body, so that TLS 1.3 session tickets, which
		// arrive after the handshake, were processed for the next dial.
		stats.record(tc.ConnectionState())
		return nil
	}
	return do, func() {}, nil
}
