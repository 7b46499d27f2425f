package jwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of the filter and the fetcher; tests inject a
// fake one. Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Defaults of FetcherOptions.
const (
	DefaultCacheDuration = 10 * time.Minute
	DefaultFetchTimeout  = 5 * time.Second
	DefaultMaxJWKSBytes  = 1 << 20
	defaultRetryMin      = time.Second
)

// FetcherOptions configure a JWKSFetcher. The zero value uses the defaults.
type FetcherOptions struct {
	// Client does the fetches (default: http.DefaultClient).
	Client *http.Client
	// CacheDuration is how long a fetched set is used before it is
	// refetched (default 10m, Envoy's remote_jwks.cache_duration default).
	CacheDuration time.Duration
	// Timeout bounds one fetch (default 5s).
	Timeout time.Duration
	// MaxBytes bounds the response body (default 1 MiB).
	MaxBytes int64
	// Clock is the time source (default SystemClock).
	Clock Clock
	// OnRefresh, if set, is called on the fetcher's goroutine after every
	// fetch attempt (nil error: new set installed), once the next attempt
	// is scheduled. It must not block.
	OnRefresh func(err error)
}

// JWKSFetcher keeps the key set of one remote JWKS URI: fetched on Start,
// refetched every CacheDuration; when a refetch fails the last good set
// keeps serving and the fetch is retried with backoff (1s doubling, capped
// at CacheDuration). Keys is safe for concurrent use and never blocks;
// Start and Stop must not be called concurrently with each other.
type JWKSFetcher struct {
	uri  string
	opts FetcherOptions
	then func(err error) // called after opts.OnRefresh (Filter.Start); set before Start
	keys atomic.Pointer[JWKS]

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewJWKSFetcher returns a fetcher for uri; nothing is fetched before
// Start (or Refresh).
func NewJWKSFetcher(uri string, opts FetcherOptions) *JWKSFetcher {
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.CacheDuration <= 0 {
		opts.CacheDuration = DefaultCacheDuration
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultFetchTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxJWKSBytes
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	return &JWKSFetcher{uri: uri, opts: opts}
}

// URI returns the JWKS URI.
func (f *JWKSFetcher) URI() string { return f.uri }

// Keys returns the last good key set, nil before the first successful
// fetch.
func (f *JWKSFetcher) Keys() *JWKS { return f.keys.Load() }

// Start starts the goroutine that fetches now and then keeps the set
// fresh. Stop stops it. Start on a started fetcher does nothing.
func (f *JWKSFetcher) Start() {
	if f.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go f.run(ctx)
}

// Stop stops the refresh goroutine and waits for it; a fetch in flight is
// cancelled. Keys keeps answering the last good set.
func (f *JWKSFetcher) Stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	f.cancel = nil
}

func (f *JWKSFetcher) run(ctx context.Context) {
	defer f.wg.Done()
	retry := defaultRetryMin
	for {
		err := f.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		next := f.opts.CacheDuration
		if err != nil {
			next = min(retry, f.opts.CacheDuration)
			retry *= 2
		} else {
			retry = defaultRetryMin
		}
		wake := f.opts.Clock.After(next)
		if f.opts.OnRefresh != nil {
			f.opts.OnRefresh(err)
		}
		if f.then != nil {
			f.then(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// Refresh fetches the set once and installs it if it parses; on failure
// the previous set stays. Safe for concurrent use.
func (f *JWKSFetcher) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.uri, nil)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", f.uri, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", f.uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("jwks %s: status %d", f.uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBytes+1))
	if err != nil {
		return fmt.Errorf("jwks %s: read: %w", f.uri, err)
	}
	if int64(len(body)) > f.opts.MaxBytes {
		return fmt.Errorf("jwks %s: %w", f.uri, errors.New("response larger than the limit"))
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", f.uri, err)
	}
	f.keys.Store(set)
	return nil
}
