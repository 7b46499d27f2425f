package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrUnknownSKU is returned by Client.Get for a SKU the catalog does not
// have.
var ErrUnknownSKU = errors.New("unknown sku")

// maxBody bounds the catalog answers a client reads.
const maxBody = 1 << 20

// Client calls the catalog over HTTP. With BaseURL http://catalog.shop and
// an HTTP client whose transport honours HTTP_PROXY (http.DefaultTransport
// does), calls go through the sidecar's HTTP proxy; with
// http://127.0.0.1:<upstream port> they go through an upstream listener.
//
// A Client is safe for concurrent use.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a client of the catalog at baseURL, calling it with hc
// (which should carry a timeout).
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("catalog url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("catalog url %q: want http://host[:port]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, http: hc}, nil
}

// List returns the catalog's products, with the version and instance that
// served them.
func (c *Client) List(ctx context.Context) (Listing, error) {
	var l Listing
	if err := c.get(ctx, "/products", &l); err != nil {
		return Listing{}, fmt.Errorf("catalog: list: %w", err)
	}
	return l, nil
}

// Get returns one product; the error wraps ErrUnknownSKU if the catalog
// does not have it.
func (c *Client) Get(ctx context.Context, sku string) (Product, error) {
	var p Product
	if err := c.get(ctx, "/products/"+url.PathEscape(sku), &p); err != nil {
		return Product{}, fmt.Errorf("catalog: get %q: %w", sku, err)
	}
	return p, nil
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && resp.Header.Get(HeaderVersion) != "":
		// A 404 from the catalog itself, not from a proxy without a route.
		return ErrUnknownSKU
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(truncate(body))))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
