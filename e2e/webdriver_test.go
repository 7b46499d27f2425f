package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A minimal client of the W3C WebDriver HTTP protocol, enough to drive
// Debian's headless Chromium through chromedriver: sessions, navigation,
// CSS lookups, clicks, typing, text, attributes, scripts and screenshots.

// elementKey is the W3C web element identifier's JSON key.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// browser is one WebDriver session. Not safe for concurrent use.
type browser struct {
	t       *testing.T
	base    string // http://127.0.0.1:<port>/session/<id>
	client  *http.Client
	shots   string // screenshot folder
	counter int
}

// webdriverError is a WebDriver error answer ("no such element", ...).
type webdriverError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *webdriverError) Error() string {
	msg, _, _ := strings.Cut(e.Message, "\n")
	return "webdriver: " + e.Code + ": " + msg
}

// startBrowser runs chromedriver on a free port and opens a headless
// Chromium session; both are stopped when the test ends. It skips the test
// when chromium or chromedriver is not installed.
func startBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium chromium-driver): skipping the browser test")
	}
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		t.Skip("chromedriver is not installed (apt-get install chromium-driver): skipping the browser test")
	}
	port := freePort(t)
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", out.String())
		}
	})
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 60 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Value struct {
				Ready bool `json:"ready"`
			} `json:"value"`
		}
		if err := wdCall(client, http.MethodGet, root+"/status", nil, &st); err == nil && st.Value.Ready {
			break
		}
		select {
		case <-exited:
			t.Fatalf("chromedriver exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready after 20s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	profile := t.TempDir()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--window-size=1400,1000", "--user-data-dir=" + filepath.Join(profile, "profile"),
				"--no-first-run", "--no-default-browser-check", "--disable-extensions"},
		},
	}}}
	var sess struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	if err := wdCall(client, http.MethodPost, root+"/session", caps, &sess); err != nil {
		t.Fatalf("new session: %v\n%s", err, out.String())
	}
	b := &browser{t: t, base: root + "/session/" + sess.Value.SessionID, client: client, shots: shots}
	t.Cleanup(func() { wdCall(client, http.MethodDelete, b.base, nil, nil) })
	return b
}

// wdCall sends one WebDriver command and decodes the answer into out.
func wdCall(c *http.Client, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Value webdriverError `json:"value"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Value.Code != "" {
			return &e.Value
		}
		return fmt.Errorf("webdriver %s %s: %s: %.300s", method, url, resp.Status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// do runs a command of the session and returns its "value".
func (b *browser) do(method, path string, in any) (json.RawMessage, error) {
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if in == nil && method == http.MethodPost {
		in = map[string]any{}
	}
	if err := wdCall(b.client, method, b.base+path, in, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

func (b *browser) must(method, path string, in any) json.RawMessage {
	b.t.Helper()
	v, err := b.do(method, path, in)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	return v
}

// open navigates to url and waits for the page to load.
func (b *browser) open(url string) {
	b.t.Helper()
	b.must(http.MethodPost, "/url", map[string]string{"url": url})
}

// script runs JavaScript in the page and decodes its result into out.
func (b *browser) script(out any, js string, args ...any) {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	v := b.must(http.MethodPost, "/execute/sync", map[string]any{"script": js, "args": args})
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			b.t.Fatalf("script result %s: %v", v, err)
		}
	}
}

// find returns the ids of the elements matching a CSS selector.
func (b *browser) find(css string) []string {
	b.t.Helper()
	v := b.must(http.MethodPost, "/elements", map[string]string{"using": "css selector", "value": css})
	var els []map[string]string
	if err := json.Unmarshal(v, &els); err != nil {
		b.t.Fatalf("elements %q: %s: %v", css, v, err)
	}
	ids := make([]string, len(els))
	for i, e := range els {
		ids[i] = e[elementKey]
	}
	return ids
}

// waitFind waits until at least n elements match css and returns them.
func (b *browser) waitFind(what, css string, n int, limit time.Duration) []string {
	b.t.Helper()
	var ids []string
	b.waitFor(what, limit, func() (bool, string) {
		ids = b.find(css)
		return len(ids) >= n, fmt.Sprintf("%d elements match %s", len(ids), css)
	})
	return ids
}

// waitFor polls cond (the page gives no signal to wait on) until it holds;
// on timeout it saves a screenshot and fails with cond's last words.
func (b *browser) waitFor(what string, limit time.Duration, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.screenshot("timeout")
			var errText string
			b.script(&errText, `const e = document.getElementById('error'); return e && !e.hidden ? e.textContent : '';`)
			b.t.Fatalf("%s: not after %s (%s; page error %q)", what, limit, state, errText)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *browser) click(id string) {
	b.t.Helper()
	b.must(http.MethodPost, "/element/"+id+"/click", nil)
}

func (b *browser) text(id string) string {
	b.t.Helper()
	var s string
	if err := json.Unmarshal(b.must(http.MethodGet, "/element/"+id+"/text", nil), &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *browser) attr(id, name string) string {
	b.t.Helper()
	var s *string
	if err := json.Unmarshal(b.must(http.MethodGet, "/element/"+id+"/attribute/"+name, nil), &s); err != nil {
		b.t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// typeInto clears an input and types text into it.
func (b *browser) typeInto(id, text string) {
	b.t.Helper()
	b.must(http.MethodPost, "/element/"+id+"/clear", nil)
	b.must(http.MethodPost, "/element/"+id+"/value", map[string]string{"text": text})
}

// screenshot saves the viewport as <n>-<name>.png in the screenshot
// folder.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	v, err := b.do(http.MethodGet, "/screenshot", nil)
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	var enc string
	if err := json.Unmarshal(v, &enc); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		b.t.Errorf("screenshot %s: not a PNG (%v)", name, err)
		return
	}
	b.counter++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.counter, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}
