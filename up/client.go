package up

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/control/api"
)

// Client talks to the runtime endpoints of a `weft up` API. It is safe for
// concurrent use. Errors the server answers are *api.Error.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client for the API at server ("host:port" or a URL);
// hc may be nil for http.DefaultClient.
func NewClient(server string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: api.BaseURL(server), hc: hc}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach weft up at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := api.ResponseError(method, path, resp, data)
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(e.Message, "no API endpoint") {
		e.Message = fmt.Sprintf("the control plane at %s is not run by weft up (%s)", c.base, e.Message)
	}
	return nil, e
}

func (c *Client) json(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// Instances lists the instances, optionally of one namespace ("" for all).
func (c *Client) Instances(ctx context.Context, namespace string) ([]InstanceStatus, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	var out []InstanceStatus
	err := c.json(ctx, http.MethodGet, InstancesPath, q, nil, &out)
	return out, err
}

// Scale sets the replicas of a Workload (namespace "" finds it).
func (c *Client) Scale(ctx context.Context, namespace, workload string, replicas int32) (ScaleResponse, error) {
	var out ScaleResponse
	err := c.json(ctx, http.MethodPost, ScalePath, nil, ScaleRequest{Namespace: namespace, Workload: workload, Replicas: replicas}, &out)
	return out, err
}

// LogsQuery selects logs.
type LogsQuery struct {
	Namespace, Workload, Instance string
	Sidecar, Follow               bool
	// Tail is the number of lines per instance to start with; < 0 all.
	Tail int
}

// Logs copies the logs to w; with Follow until ctx is done or weft up
// stops.
func (c *Client) Logs(ctx context.Context, q LogsQuery, w io.Writer) error {
	v := url.Values{"workload": {q.Workload}, "tail": {strconv.Itoa(q.Tail)}}
	if q.Namespace != "" {
		v.Set("namespace", q.Namespace)
	}
	if q.Instance != "" {
		v.Set("instance", q.Instance)
	}
	if q.Sidecar {
		v.Set("sidecar", "true")
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	resp, err := c.do(ctx, http.MethodGet, LogsPath, v, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
