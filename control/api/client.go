package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/weft-mesh/weft/control/resource"
)

// Error is a non-2xx answer of the API.
type Error struct {
	Status   int
	Message  string
	Errors   []string
	Warnings []string
}

// Error returns the server's message.
func (e *Error) Error() string { return e.Message }

// Client talks to the resource API. It is safe for concurrent use.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// WithToken returns a copy of c that sends "Authorization: Bearer token"
// (the operator token: needed for writes when the API is not on loopback,
// and always for issuing join tokens and rotating the CA).
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// NewClient returns a client for the API at server ("host:port" or a URL).
// hc may be nil for http.DefaultClient.
func NewClient(server string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: BaseURL(server), hc: hc}
}

// BaseURL turns a server given as "host:port" or a URL into the base URL
// of the API (scheme, no trailing slash).
func BaseURL(server string) string {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return strings.TrimRight(server, "/")
}

// ResponseError returns the *Error for a non-2xx answer whose body is data:
// the server's JSON error when it sent one, else the status and body text.
func ResponseError(method, path string, resp *http.Response, data []byte) *Error {
	var er ErrorResponse
	if json.Unmarshal(data, &er) != nil || er.Error == "" {
		return &Error{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))}
	}
	return &Error{Status: resp.StatusCode, Message: er.Error, Errors: er.Errors, Warnings: er.Warnings}
}

// Apply applies the objects of one or more sources (files) in one
// transaction.
func (c *Client) Apply(ctx context.Context, sources []Source, dryRun bool) (ApplyResponse, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dryRun", "true")
	}
	var out ApplyResponse
	err := c.sources(ctx, "/api/v1/apply", q, sources, &out)
	return out, err
}

// DeleteSources deletes the objects named in the sources, in one transaction.
func (c *Client) DeleteSources(ctx context.Context, sources []Source) (ApplyResponse, error) {
	var out ApplyResponse
	err := c.sources(ctx, "/api/v1/delete", nil, sources, &out)
	return out, err
}

func (c *Client) sources(ctx context.Context, path string, q url.Values, sources []Source, out any) error {
	body, err := json.Marshal(SourcesRequest{Sources: sources})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.do(ctx, http.MethodPost, path, q, SourcesContentType, body, out)
}

// Delete deletes one object; kind is any name LookupKind accepts.
func (c *Client) Delete(ctx context.Context, kind, namespace, name string) (ApplyResponse, error) {
	var out ApplyResponse
	err := c.do(ctx, http.MethodDelete, objectPath(kind, namespace, name), nil, "", nil, &out)
	return out, err
}

// List lists objects of kind; namespace "" means all namespaces.
func (c *Client) List(ctx context.Context, kind, namespace string) (List, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	var out List
	err := c.do(ctx, http.MethodGet, "/api/v1/"+url.PathEscape(kind), q, "", nil, &out)
	return out, err
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, kind, namespace, name string) (resource.Object, error) {
	var out resource.Object
	err := c.do(ctx, http.MethodGet, objectPath(kind, namespace, name), nil, "", nil, &out)
	return out, err
}

// Version returns the server's version and revision.
func (c *Client) Version(ctx context.Context) (VersionResponse, error) {
	var out VersionResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/version", nil, "", nil, &out)
	return out, err
}

func objectPath(kind, namespace, name string) string {
	return "/api/v1/" + url.PathEscape(kind) + "/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, ctype string, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the weft control plane at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return ResponseError(method, path, resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// GetJSON decodes the JSON answer of GET path (for endpoints other
// components add to the API, such as /api/v1/proxies).
func (c *Client) GetJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", nil, out)
}

// PostJSON sends in as JSON to path and decodes the JSON answer into out.
func (c *Client) PostJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.do(ctx, http.MethodPost, path, nil, "application/json", body, out)
}

// JoinTokenRequest is the body of POST /api/v1/join-tokens.
type JoinTokenRequest struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	// TTL is a Go duration ("24h"); empty or "0" for no expiry.
	TTL string `json:"ttl,omitempty"`
}

// JoinTokenResponse answers it.
type JoinTokenResponse struct {
	Token string `json:"token"`
}

// RotateResponse answers POST /api/v1/ca/rotate.
type RotateResponse struct {
	Root string `json:"root"` // hex SHA-256 of the new root
}
