package checkout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// StatusError is a non-200 answer of the checkout service; immutable.
type StatusError struct {
	Code    int    // HTTP status
	Message string // the answer's "error" field, or its body
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.Code, e.Message) }

// Client calls the checkout service over HTTP. It is safe for concurrent
// use.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the checkout service at baseURL
// (http://host[:port]), calling it with hc (which should carry a timeout).
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("checkout url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("checkout url %q: want http://host[:port]", baseURL)
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: hc}, nil
}

// Checkout places user's order. A non-200 answer is a *StatusError.
func (c *Client) Checkout(ctx context.Context, user string) (Order, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/checkout/"+url.PathEscape(user), nil)
	if err != nil {
		return Order{}, fmt.Errorf("checkout: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Order{}, fmt.Errorf("checkout: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Order{}, fmt.Errorf("checkout: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return Order{}, fmt.Errorf("checkout: %w", &StatusError{Code: resp.StatusCode, Message: msg})
	}
	var o Order
	if err := json.Unmarshal(body, &o); err != nil {
		return Order{}, fmt.Errorf("checkout: decode answer: %w", err)
	}
	return o, nil
}
