package up

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Readiness is how the supervisor tells that an instance's program is
// ready. The zero value means "ready as soon as it runs".
type Readiness struct {
	// HTTPPath, if set, is probed with GET http://127.0.0.1:$PORT<path>;
	// 2xx and 3xx are ready.
	HTTPPath string
	// TCP: a TCP connect to 127.0.0.1:$PORT is ready.
	TCP bool
	// Period between probes once the instance has been ready. Before it
	// first becomes ready it is probed every min(Period, 100ms) so that it
	// is seen ready quickly. Default 1s.
	Period time.Duration
	// FailureThreshold is the number of consecutive failed probes after
	// which a ready instance is unready. Default 3.
	FailureThreshold int
}

func (r Readiness) withDefaults() Readiness {
	if r.Period <= 0 {
		r.Period = time.Second
	}
	if r.FailureThreshold <= 0 {
		r.FailureThreshold = 3
	}
	return r
}

// probes checks ports on loopback. It is safe for concurrent use.
type prober struct {
	client  *http.Client
	timeout time.Duration
}

func newProber(timeout time.Duration) *prober {
	return &prober{
		timeout: timeout,
		client: &http.Client{
			// Never through HTTP_PROXY: the target is local.
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
			// A redirect answer is success; do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// check runs one probe against 127.0.0.1:port; nil is success.
func (p *prober) check(ctx context.Context, r Readiness, port int) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	switch {
	case r.HTTPPath != "":
		return p.httpGet(ctx, "http://"+addr+r.HTTPPath)
	case r.TCP:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	return nil
}

func (p *prober) httpGet(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "weft-up-probe")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
