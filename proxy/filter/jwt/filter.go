// Package jwt implements a subset of Envoy's JWT authentication filter
// (envoy.filters.http.jwt_authn) for tokens carried by people: providers
// (issuer, audiences, inline or remote JWKS, token locations), rules that
// map request paths to requirements, and verification of compact JWS
// tokens with the standard library (RS*, PS*, ES*, EdDSA; "none" and HMAC
// refused). The verified claims are handed to the authorization filter.
//
// Differences from Envoy, all documented on the fields they concern:
// remote JWKS are fetched directly by the proxy (http_uri.cluster is
// accepted and ignored), always in the background (as with async_fetch);
// until the first fetch succeeds, tokens of that provider fail with
// jwks_unavailable.
package jwt

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/subset"
)

// Name is the filter's name in http_filters.
const Name = "envoy.filters.http.jwt_authn"

// Headers is read by Decide; names are lower-case. Decide asks for
// ":method" (CORS preflight bypass) besides ordinary headers.
type Headers interface {
	Get(name string) (string, bool)
}

// Reasons reported on requests that pass.
const (
	ReasonVerified      = "jwt_verified"
	ReasonNoRequirement = "no_requirement"
	ReasonCORSPreflight = "cors_preflight"
)

// Result is the outcome of Decide for one request.
type Result struct {
	// Status is 0 when the request passes, else the HTTP status to answer
	// with: 401 for a missing or invalid token, 403 when only the
	// audience is wrong (as Envoy does).
	Status int
	// Claims are the verified token's claims (nil when no token was
	// verified); they feed authz.Request.Claims. Do not modify.
	Claims map[string]any
	// Provider names the provider that verified the token.
	Provider string
	// Reason is "jwt_verified", "no_requirement", "cors_preflight", or the
	// failure reason (jwt_missing, jwt_expired, ...). A request that
	// passes under allow_missing(_or_failed) keeps the failure reason
	// with Status 0.
	Reason string
	// Err details a failure, for logs; nil otherwise.
	Err error
	// RemoveHeader is the header that carried the verified token, to be
	// removed before forwarding (provider forward: false); "" to keep.
	RemoveHeader string
	// SetHeaders are the claim_to_headers of the verifying provider.
	SetHeaders []HeaderValue
}

// HeaderValue is one header to set on the forwarded request.
type HeaderValue struct {
	Name, Value string
}

// Options are the run-time dependencies of a Filter.
type Options struct {
	// Clock is the time source for exp/nbf and the JWKS fetchers
	// (default SystemClock).
	Clock Clock
	// Client fetches remote JWKS (default http.DefaultClient).
	Client *http.Client
	// OnRefresh is passed to every fetcher (see FetcherOptions.OnRefresh).
	OnRefresh func(uri string, err error)
}

// Filter is a decoded JwtAuthentication. Decide is safe for concurrent
// use; Start and Stop (which run the remote JWKS fetchers) must not be
// called concurrently with each other.
type Filter struct {
	clock     Clock
	providers []*provider // sorted by name
	// anyProvider holds one provider requirement per provider, for a
	// top-level allow_missing(_or_failed).
	anyProvider []*requirement
	rules       []rule
	cors        bool
	fetchers    []*JWKSFetcher
}

type provider struct {
	name         string
	issuer       string
	audiences    []string
	local        *JWKS
	fetcher      *JWKSFetcher
	headers      []tokenHeader
	params       []string
	cookies      []string
	forward      bool
	leeway       time.Duration
	requireExp   bool
	claimHeaders []claimHeader
}

type tokenHeader struct{ name, prefix string }

type claimHeader struct {
	header string
	path   []string
}

type reqKind uint8

const (
	reqProvider reqKind = iota
	reqAny
	reqAll
	reqAllowMissing
	reqAllowMissingOrFailed
)

type requirement struct {
	kind      reqKind
	provider  *provider
	audiences []string // provider_and_audiences override; nil: provider's
	children  []*requirement
}

type rule struct {
	exact, prefix string
	sepPrefix     bool
	re            *regexp.Regexp
	ignoreCase    bool
	headers       []headerMatch
	req           *requirement // nil: no requirement
}

type headerMatch struct {
	name                            string
	exact, prefix, suffix, contains string
	kind                            uint8 // 0 present, 1 exact, 2 prefix, 3 suffix, 4 contains
	invert                          bool
}

// DecodeAny decodes a typed config holding a JwtAuthentication.
func DecodeAny(a *anypb.Any, opts Options) (*Filter, error) {
	var c jwtv3.JwtAuthentication
	if err := a.UnmarshalTo(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return Decode(&c, opts)
}

// Decode validates a JwtAuthentication; errors name the field path.
// Remote JWKS fetchers are created but not started: call Start.
func Decode(c *jwtv3.JwtAuthentication, opts Options) (*Filter, error) {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	// stat_prefix and strip_failure_response change nothing weft reports.
	if err := subset.Fields(c, "", "providers", "rules", "requirement_map", "bypass_cors_preflight", "stat_prefix", "strip_failure_response"); err != nil {
		return nil, err
	}
	f := &Filter{clock: opts.Clock, cors: c.GetBypassCorsPreflight()}
	byName := map[string]*provider{}
	names := make([]string, 0, len(c.GetProviders()))
	for n := range c.GetProviders() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, err := decodeProvider(n, c.GetProviders()[n], opts)
		if err != nil {
			return nil, err
		}
		byName[n] = p
		f.providers = append(f.providers, p)
		f.anyProvider = append(f.anyProvider, &requirement{kind: reqProvider, provider: p})
		if p.fetcher != nil {
			f.fetchers = append(f.fetchers, p.fetcher)
		}
	}
	reqMap := map[string]*requirement{}
	for n, r := range c.GetRequirementMap() {
		req, err := f.decodeRequirement(r, fmt.Sprintf("requirement_map[%q]", n), byName, 0)
		if err != nil {
			return nil, err
		}
		reqMap[n] = req
	}
	for i, r := range c.GetRules() {
		ru, err := f.decodeRule(r, fmt.Sprintf("rules[%d]", i), byName, reqMap)
		if err != nil {
			return nil, err
		}
		f.rules = append(f.rules, ru)
	}
	return f, nil
}

func decodeProvider(name string, p *jwtv3.JwtProvider, opts Options) (*provider, error) {
	path := fmt.Sprintf("providers[%q]", name)
	// payload_in_metadata is accepted: weft always returns the claims in
	// Result.Claims (what Envoy's metadata carries). jwt_cache_config only
	// sizes Envoy's verification cache.
	if err := subset.Fields(p, path, "issuer", "audiences", "local_jwks", "remote_jwks", "forward", "from_headers",
		"from_params", "from_cookies", "payload_in_metadata", "clock_skew_seconds", "jwt_cache_config",
		"claim_to_headers", "require_expiration"); err != nil {
		return nil, err
	}
	out := &provider{
		name:       name,
		issuer:     p.GetIssuer(),
		audiences:  p.GetAudiences(),
		forward:    p.GetForward(),
		requireExp: p.GetRequireExpiration(),
		leeway:     DefaultLeeway,
		params:     p.GetFromParams(),
		cookies:    p.GetFromCookies(),
	}
	if p.ClockSkewSeconds != 0 {
		out.leeway = time.Duration(p.GetClockSkewSeconds()) * time.Second
	}
	switch {
	case p.GetLocalJwks() != nil:
		data, err := dataSource(p.GetLocalJwks(), path+".local_jwks")
		if err != nil {
			return nil, err
		}
		if out.local, err = ParseJWKS(data); err != nil {
			return nil, fmt.Errorf("%s.local_jwks: %w", path, err)
		}
	case p.GetRemoteJwks() != nil:
		r := p.GetRemoteJwks()
		rp := path + ".remote_jwks"
		if err := subset.Fields(r, rp, "http_uri", "cache_duration", "async_fetch"); err != nil {
			return nil, err
		}
		// cluster is accepted and ignored: weft fetches the URI itself.
		if err := subset.Fields(r.GetHttpUri(), rp+".http_uri", "uri", "cluster", "timeout"); err != nil {
			return nil, err
		}
		u, err := url.Parse(r.GetHttpUri().GetUri())
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s.http_uri.uri: want an http(s) URL, got %q", rp, r.GetHttpUri().GetUri())
		}
		fo := FetcherOptions{Client: opts.Client, Clock: opts.Clock}
		if d := r.GetCacheDuration(); d != nil {
			if d.CheckValid() != nil || d.AsDuration() <= 0 {
				return nil, fmt.Errorf("%s.cache_duration: must be positive", rp)
			}
			fo.CacheDuration = d.AsDuration()
		}
		if d := r.GetHttpUri().GetTimeout(); d != nil {
			if d.CheckValid() != nil || d.AsDuration() < 0 {
				return nil, fmt.Errorf("%s.http_uri.timeout: invalid duration", rp)
			}
			fo.Timeout = d.AsDuration()
		}
		if opts.OnRefresh != nil {
			uri := u.String()
			fo.OnRefresh = func(err error) { opts.OnRefresh(uri, err) }
		}
		out.fetcher = NewJWKSFetcher(u.String(), fo)
	default:
		return nil, fmt.Errorf("%s: local_jwks or remote_jwks required", path)
	}
	for i, h := range p.GetFromHeaders() {
		if h.GetName() == "" {
			return nil, fmt.Errorf("%s.from_headers[%d].name: required", path, i)
		}
		out.headers = append(out.headers, tokenHeader{name: strings.ToLower(h.GetName()), prefix: h.GetValuePrefix()})
	}
	if len(out.headers) == 0 && len(out.params) == 0 && len(out.cookies) == 0 {
		// Envoy's default locations.
		out.headers = []tokenHeader{{name: "authorization", prefix: "Bearer "}}
		out.params = []string{"access_token"}
	}
	for i, ch := range p.GetClaimToHeaders() {
		cp := fmt.Sprintf("%s.claim_to_headers[%d]", path, i)
		if err := subset.Fields(ch, cp, "header_name", "claim_name"); err != nil {
			return nil, err
		}
		if ch.GetHeaderName() == "" || ch.GetClaimName() == "" {
			return nil, fmt.Errorf("%s: header_name and claim_name required", cp)
		}
		out.claimHeaders = append(out.claimHeaders, claimHeader{header: strings.ToLower(ch.GetHeaderName()), path: strings.Split(ch.GetClaimName(), ".")})
	}
	return out, nil
}

func dataSource(d *corev3.DataSource, path string) ([]byte, error) {
	switch s := d.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_Filename:
		b, err := readJWKSFile(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("%s.filename: %w", path, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s: inline_string, inline_bytes or filename required", path)
}

// readJWKSFile reads a regular file of at most DefaultMaxJWKSBytes.
func readJWKSFile(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	if st.Size() > DefaultMaxJWKSBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, DefaultMaxJWKSBytes)
	}
	return io.ReadAll(io.LimitReader(fh, DefaultMaxJWKSBytes))
}

const maxRequirementDepth = 8

func (f *Filter) decodeRequirement(r *jwtv3.JwtRequirement, path string, byName map[string]*provider, depth int) (*requirement, error) {
	if depth > maxRequirementDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d", path, maxRequirementDepth)
	}
	lookup := func(n, p string) (*provider, error) {
		pr, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("%s: unknown provider %q", p, n)
		}
		return pr, nil
	}
	switch t := r.GetRequiresType().(type) {
	case *jwtv3.JwtRequirement_ProviderName:
		p, err := lookup(t.ProviderName, path+".provider_name")
		if err != nil {
			return nil, err
		}
		return &requirement{kind: reqProvider, provider: p}, nil
	case *jwtv3.JwtRequirement_ProviderAndAudiences:
		p, err := lookup(t.ProviderAndAudiences.GetProviderName(), path+".provider_and_audiences.provider_name")
		if err != nil {
			return nil, err
		}
		return &requirement{kind: reqProvider, provider: p, audiences: t.ProviderAndAudiences.GetAudiences()}, nil
	case *jwtv3.JwtRequirement_RequiresAny:
		return f.decodeList(reqAny, t.RequiresAny.GetRequirements(), path+".requires_any", byName, depth)
	case *jwtv3.JwtRequirement_RequiresAll:
		return f.decodeList(reqAll, t.RequiresAll.GetRequirements(), path+".requires_all", byName, depth)
	case *jwtv3.JwtRequirement_AllowMissing:
		return &requirement{kind: reqAllowMissing}, nil
	case *jwtv3.JwtRequirement_AllowMissingOrFailed:
		return &requirement{kind: reqAllowMissingOrFailed}, nil
	case nil:
		return nil, fmt.Errorf("%s: a requirement is required", path)
	}
	return nil, fmt.Errorf("%s: requirement type unsupported by weft", path)
}

func (f *Filter) decodeList(kind reqKind, rs []*jwtv3.JwtRequirement, path string, byName map[string]*provider, depth int) (*requirement, error) {
	if len(rs) < 2 {
		return nil, fmt.Errorf("%s.requirements: at least 2 required", path)
	}
	out := &requirement{kind: kind}
	for i, c := range rs {
		cr, err := f.decodeRequirement(c, fmt.Sprintf("%s.requirements[%d]", path, i), byName, depth+1)
		if err != nil {
			return nil, err
		}
		if kind == reqAll && (cr.kind == reqAllowMissing || cr.kind == reqAllowMissingOrFailed) {
			return nil, fmt.Errorf("%s.requirements[%d]: allow_missing is meaningless in requires_all", path, i)
		}
		out.children = append(out.children, cr)
	}
	return out, nil
}

func (f *Filter) decodeRule(r *jwtv3.RequirementRule, path string, byName map[string]*provider, reqMap map[string]*requirement) (rule, error) {
	var out rule
	if err := subset.Fields(r, path, "match", "requires", "requirement_name"); err != nil {
		return out, err
	}
	m := r.GetMatch()
	if m == nil {
		return out, fmt.Errorf("%s.match: required", path)
	}
	mp := path + ".match"
	if err := subset.Fields(m, mp, "prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive", "headers"); err != nil {
		return out, err
	}
	out.ignoreCase = m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.prefix = ps.Prefix
	case *routev3.RouteMatch_Path:
		out.exact = ps.Path
	case *routev3.RouteMatch_PathSeparatedPrefix:
		if !strings.HasPrefix(ps.PathSeparatedPrefix, "/") || strings.HasSuffix(ps.PathSeparatedPrefix, "/") || strings.ContainsAny(ps.PathSeparatedPrefix, "?#") {
			return out, fmt.Errorf("%s.path_separated_prefix: must start with / and not end with /", mp)
		}
		out.prefix, out.sepPrefix = ps.PathSeparatedPrefix, true
	case *routev3.RouteMatch_SafeRegex:
		if err := subset.Fields(ps.SafeRegex, mp+".safe_regex", "regex", "google_re2"); err != nil {
			return out, err
		}
		re, err := regexp.Compile("^(?:" + ps.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return out, fmt.Errorf("%s.safe_regex.regex: %w", mp, err)
		}
		out.re = re
	default:
		return out, fmt.Errorf("%s: prefix, path, path_separated_prefix or safe_regex required", mp)
	}
	if out.ignoreCase {
		out.exact, out.prefix = strings.ToLower(out.exact), strings.ToLower(out.prefix)
	}
	for i, h := range m.GetHeaders() {
		hm, err := decodeHeaderMatch(h, fmt.Sprintf("%s.headers[%d]", mp, i))
		if err != nil {
			return out, err
		}
		out.headers = append(out.headers, hm)
	}
	switch t := r.GetRequirementType().(type) {
	case *jwtv3.RequirementRule_Requires:
		req, err := f.decodeRequirement(t.Requires, path+".requires", byName, 0)
		if err != nil {
			return out, err
		}
		out.req = req
	case *jwtv3.RequirementRule_RequirementName:
		req, ok := reqMap[t.RequirementName]
		if !ok {
			return out, fmt.Errorf("%s.requirement_name: %q not in requirement_map", path, t.RequirementName)
		}
		out.req = req
	}
	return out, nil
}

func decodeHeaderMatch(h *routev3.HeaderMatcher, p string) (headerMatch, error) {
	if err := subset.Fields(h, p, "name", "present_match", "string_match", "invert_match"); err != nil {
		return headerMatch{}, err
	}
	m := headerMatch{name: strings.ToLower(h.GetName()), invert: h.GetInvertMatch()}
	if m.name == "" {
		return m, fmt.Errorf("%s.name: required", p)
	}
	if h.GetPresentMatch() {
		return m, nil
	}
	sm := h.GetStringMatch()
	if sm == nil {
		return m, fmt.Errorf("%s: present_match or string_match required", p)
	}
	if err := subset.Fields(sm, p+".string_match", "exact", "prefix", "suffix", "contains"); err != nil {
		return m, err
	}
	switch {
	case sm.GetExact() != "":
		m.kind, m.exact = 1, sm.GetExact()
	case sm.GetPrefix() != "":
		m.kind, m.prefix = 2, sm.GetPrefix()
	case sm.GetSuffix() != "":
		m.kind, m.suffix = 3, sm.GetSuffix()
	case sm.GetContains() != "":
		m.kind, m.contains = 4, sm.GetContains()
	default:
		return m, fmt.Errorf("%s.string_match: exact, prefix, suffix or contains required", p)
	}
	return m, nil
}

// Start starts the remote JWKS fetchers. onRefresh, if not nil, is
// called after each of their fetch attempts too (after Options.OnRefresh),
// on the fetcher's goroutine; it must not block.
func (f *Filter) Start(onRefresh func(uri string, err error)) {
	for _, x := range f.fetchers {
		if onRefresh != nil {
			x.then = func(err error) { onRefresh(x.uri, err) }
		}
		x.Start()
	}
}

// Stop stops the remote JWKS fetchers and waits for them.
func (f *Filter) Stop() {
	for _, x := range f.fetchers {
		x.Stop()
	}
}

// Decide authenticates one request. path is the request's :path (query
// included: from_params reads it). The first rule whose match fits
// decides the requirement; no matching rule (or a rule without
// requirement) lets the request pass unverified.
func (f *Filter) Decide(h Headers, path string) Result {
	p, query, _ := strings.Cut(path, "?")
	var req *requirement
	matched := false
	for i := range f.rules {
		if f.rules[i].match(h, p) {
			req, matched = f.rules[i].req, true
			break
		}
	}
	if !matched || req == nil {
		return Result{Reason: ReasonNoRequirement}
	}
	if f.cors && isPreflight(h) {
		return Result{Reason: ReasonCORSPreflight}
	}
	o := f.eval(req, h, query)
	if o.err == nil {
		r := Result{Claims: o.claims, Reason: ReasonVerified}
		if o.p != nil {
			r.Provider = o.p.name
			if !o.p.forward {
				r.RemoveHeader = o.src
			}
			r.SetHeaders = o.p.headersFromClaims(o.claims)
		}
		return r
	}
	r := Result{Reason: Reason(o.err), Err: o.err}
	if !o.allowed {
		r.Status = http.StatusUnauthorized
		if errors.Is(o.err, ErrAudienceMismatch) {
			r.Status = http.StatusForbidden
		}
	}
	if o.p != nil {
		r.Provider = o.p.name
	}
	return r
}

func isPreflight(h Headers) bool {
	m, _ := h.Get(":method")
	if m != http.MethodOptions {
		return false
	}
	_, o := h.Get("origin")
	_, a := h.Get("access-control-request-method")
	return o && a
}

// outcome is the result of evaluating one requirement.
type outcome struct {
	claims  map[string]any
	p       *provider
	src     string // header the token came from ("" for params, cookies)
	err     error  // nil: verified
	allowed bool   // err set, but an allow_missing(_or_failed) let it pass
}

func (f *Filter) eval(r *requirement, h Headers, query string) outcome {
	switch r.kind {
	case reqProvider:
		return f.verify(r.provider, r.audiences, h, query)
	case reqAll:
		var first outcome
		for i, c := range r.children {
			o := f.eval(c, h, query)
			if o.err != nil {
				return o
			}
			if i == 0 {
				first = o
			}
		}
		return first
	case reqAny:
		return f.evalAny(r.children, h, query, reqAny)
	default:
		// A top-level allow_missing(_or_failed): any provider may verify.
		return f.evalAny(f.anyProvider, h, query, r.kind)
	}
}

// rank orders failures: the most telling one is reported.
func rank(err error) int {
	switch {
	case errors.Is(err, ErrMissing):
		return 0
	case errors.Is(err, ErrIssuerMismatch):
		return 1
	}
	return 2
}

// evalAny passes on the first child that passes; extra (reqAllowMissing or
// reqAllowMissingOrFailed) acts as one more child.
func (f *Filter) evalAny(kids []*requirement, h Headers, query string, extra reqKind) outcome {
	var best outcome
	allowMissing, allowFailed := extra == reqAllowMissing, extra == reqAllowMissingOrFailed
	for _, c := range kids {
		switch c.kind {
		case reqAllowMissing:
			allowMissing = true
			continue
		case reqAllowMissingOrFailed:
			allowFailed = true
			continue
		}
		o := f.eval(c, h, query)
		if o.err == nil || o.allowed {
			return o
		}
		if best.err == nil || rank(o.err) > rank(best.err) {
			best = o
		}
	}
	if best.err == nil {
		best.err = ErrMissing
	}
	// A token of an issuer no provider here expects counts as missing, as
	// in Envoy.
	if allowFailed || (allowMissing && rank(best.err) <= 1) {
		best.allowed = true
	}
	return best
}

func (f *Filter) verify(p *provider, aud []string, h Headers, query string) outcome {
	tok, src := p.extract(h, query)
	if tok == "" {
		return outcome{p: p, err: ErrMissing}
	}
	keys := p.local
	if p.fetcher != nil {
		keys = p.fetcher.Keys()
	}
	if aud == nil {
		aud = p.audiences
	}
	claims, err := Verify(tok, keys, Validation{Issuer: p.issuer, Audiences: aud, Now: f.clock.Now(), Leeway: p.leeway, RequireExp: p.requireExp})
	if err != nil {
		return outcome{p: p, err: err}
	}
	return outcome{claims: claims, p: p, src: src}
}

// extract returns the provider's token and the header it came from.
func (p *provider) extract(h Headers, query string) (string, string) {
	for _, th := range p.headers {
		v, ok := h.Get(th.name)
		if !ok {
			continue
		}
		if th.prefix == "" {
			if t := strings.TrimSpace(v); t != "" {
				return t, th.name
			}
			continue
		}
		if len(v) < len(th.prefix) || !strings.EqualFold(v[:len(th.prefix)], th.prefix) {
			continue
		}
		if t := jwtPrefix(strings.TrimLeft(v[len(th.prefix):], " ")); t != "" {
			return t, th.name
		}
	}
	if len(p.params) > 0 && query != "" {
		for _, name := range p.params {
			if t := queryParam(query, name); t != "" {
				return t, ""
			}
		}
	}
	if len(p.cookies) > 0 {
		if c, ok := h.Get("cookie"); ok {
			for _, name := range p.cookies {
				if t := cookie(c, name); t != "" {
					return t, ""
				}
			}
		}
	}
	return "", ""
}

// jwtPrefix returns the leading run of characters a compact JWS may hold
// (Envoy ends a prefixed token at the first other character).
func jwtPrefix(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '=') {
			return s[:i]
		}
	}
	return s
}

func queryParam(q, name string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return ""
			}
			v = u
		}
		return v
	}
	return ""
}

func cookie(header, name string) string {
	for header != "" {
		var kv string
		kv, header, _ = strings.Cut(header, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func (p *provider) headersFromClaims(claims map[string]any) []HeaderValue {
	var out []HeaderValue
	for _, ch := range p.claimHeaders {
		var v any = claims
		for _, k := range ch.path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		var s string
		switch t := v.(type) {
		case string:
			s = t
		case float64:
			s = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(t)
		default:
			continue
		}
		out = append(out, HeaderValue{Name: ch.header, Value: s})
	}
	return out
}

func (r *rule) match(h Headers, path string) bool {
	p := path
	if r.ignoreCase && r.re == nil {
		p = strings.ToLower(p) // allocates only when the path has capitals
	}
	switch {
	case r.re != nil:
		if !r.re.MatchString(p) {
			return false
		}
	case r.exact != "":
		if p != r.exact {
			return false
		}
	case r.sepPrefix:
		if !strings.HasPrefix(p, r.prefix) || (len(p) > len(r.prefix) && p[len(r.prefix)] != '/') {
			return false
		}
	default:
		if !strings.HasPrefix(p, r.prefix) {
			return false
		}
	}
	for _, m := range r.headers {
		if !m.match(h) {
			return false
		}
	}
	return true
}

func (m headerMatch) match(h Headers) bool {
	v, ok := h.Get(m.name)
	var r bool
	switch {
	case m.kind == 0:
		r = ok
	case !ok:
		return false
	case m.kind == 1:
		r = v == m.exact
	case m.kind == 2:
		r = strings.HasPrefix(v, m.prefix)
	case m.kind == 3:
		r = strings.HasSuffix(v, m.suffix)
	default:
		r = strings.Contains(v, m.contains)
	}
	return r != m.invert
}
