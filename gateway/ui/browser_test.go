package ui_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/orderengine/chaos"
)

// The browser test starts three orderd processes and headless Chromium,
// so it runs only when asked: make test-ui passes -ui.
var (
	uiTest     = flag.Bool("ui", false, "run the browser test of the dashboard (make test-ui)")
	uiOut      = flag.String("ui.out", "", "directory for the screenshot (default: the test's temporary directory)")
	uiSale     = flag.Duration("ui.sale", 10*time.Second, "how long checkouts run before the screenshot")
	uiChromium = flag.String("ui.chromium", "", "the Chromium binary (default: chromium or chromium-browser on PATH)")
)

const (
	uiToken       = "ui-test-token"
	uiWaitMax     = 30 * time.Second // from navigation to the first poll shown
	uiPartitions  = 64
	uiMembers     = 3
	uiHotSKUStock = 2500 // sells out during the sale, so 409s show too
	uiSaleWorkers = 6
)

func TestDashboardInBrowser(t *testing.T) {
	if !*uiTest {
		t.Skip("browser test: run with -ui (make test-ui)")
	}
	bin := findChromium(t)
	orderd := buildOrderd(t)
	c := chaos.NewCluster(chaos.ClusterConfig{Bin: orderd, Dir: t.TempDir(), Token: uiToken,
		Partitions: uiPartitions, Log: t.Output()})
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	ctx := t.Context()
	if err := c.Start(ctx, uiMembers); err != nil {
		t.Fatal(err)
	}
	members := c.Members()
	stopSale := startSale(t, members)
	defer stopSale()

	var out capped // Chromium's own chatter (D-Bus, GPU) is shown only on failure
	b, err := startBrowser(bin, t.TempDir(), &out, "--window-size=1440,1100")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	defer func() {
		if t.Failed() {
			t.Logf("chromium output (last %d bytes):\n%s", browserOutputMax, out.String())
		}
	}()
	session := openPage(t, b)
	var errs jsErrors
	go errs.collect(b)

	url := members[0].Base() + "/ui"
	if err := b.call(ctx, session, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		t.Fatal(err)
	}
	got := waitForPage(t, b, session, func(p pageState) bool {
		return p.Polls >= 1 && p.Members == uiMembers && p.Cells == uiPartitions
	})
	t.Logf("first poll shown: %+v", got)
	if got.Readiness != "ready" {
		t.Errorf("readiness shows %q, want ready", got.Readiness)
	}
	if got.Alive != uiMembers {
		t.Errorf("%d members shown alive, want %d", got.Alive, uiMembers)
	}
	// Let the sale run with the page open, then take the picture.
	time.Sleep(*uiSale)
	got = waitForPage(t, b, session, func(p pageState) bool { return p.Hot > 0 })
	t.Logf("after the sale: %+v", got)
	shot := screenshot(t, b, session)
	t.Logf("screenshot: %s", shot)
	if e := errs.list(); len(e) > 0 {
		t.Errorf("JavaScript errors on the page:\n%s", strings.Join(e, "\n"))
	}
}

// findChromium returns the browser, or skips saying why there is none.
func findChromium(t *testing.T) string {
	if *uiChromium != "" {
		return *uiChromium
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: make test-ui installs Debian's chromium with apt-get where it can (as root on Debian)")
	return ""
}

// buildOrderd builds cmd/orderd from this module into a temporary
// directory.
func buildOrderd(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "orderd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/orderd")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orderd: %v\n%s", err, out)
	}
	return bin
}

// openPage opens a tab and attaches to it, with console, log and page
// events on.
func openPage(t *testing.T, b *browser) string {
	ctx := t.Context()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	s := attached.SessionID
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		if err := b.call(ctx, s, m, map[string]any{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.call(ctx, s, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 1440, "height": 1100, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// jsErrors collects every uncaught exception, console.error and error
// log entry (a failed fetch, a refused content security policy) of the
// page.
type jsErrors struct {
	mu   sync.Mutex
	errs []string
}

func (j *jsErrors) collect(b *browser) {
	for {
		select {
		case <-b.done:
			return
		case m := <-b.events:
			if e := jsError(m); e != "" {
				j.mu.Lock()
				j.errs = append(j.errs, e)
				j.mu.Unlock()
			}
		}
	}
}

func (j *jsErrors) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.errs...)
}

func jsError(m cdpMessage) string {
	switch m.Method {
	case "Runtime.exceptionThrown":
		return "exception: " + string(m.Params)
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(m.Params, &p) == nil && (p.Type == "error" || p.Type == "assert") {
			return "console." + p.Type + ": " + string(m.Params)
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level string `json:"level"`
				Text  string `json:"text"`
				URL   string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.Entry.Level == "error" {
			return "log: " + p.Entry.Text + " " + p.Entry.URL
		}
	}
	return ""
}

// pageState is what the page shows, read from its DOM.
type pageState struct {
	Polls     int    `json:"polls"`
	Members   int    `json:"members"`
	Alive     int    `json:"alive"`
	Cells     int    `json:"cells"`
	Hot       int    `json:"hot"`
	Readiness string `json:"readiness"`
	Banner    string `json:"banner"`
}

const pageStateJS = `JSON.stringify({
  polls: Number(document.body.dataset.polls || 0),
  members: document.querySelectorAll("#members tbody tr").length,
  alive: [...document.querySelectorAll("#members tbody tr td:nth-child(2)")].filter(td => td.textContent === "alive").length,
  cells: document.querySelectorAll("#pmap .cell").length,
  hot: document.querySelectorAll("#hot tbody tr").length,
  readiness: document.getElementById("readiness").textContent,
  banner: document.getElementById("banner").textContent,
})`

// waitForPage reads the page's state until ok accepts it, for at most
// uiWaitMax.
func waitForPage(t *testing.T, b *browser, session string, ok func(pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(uiWaitMax)
	var last pageState
	for time.Now().Before(deadline) {
		var res struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		err := b.call(t.Context(), session, "Runtime.evaluate", map[string]any{"expression": pageStateJS, "returnByValue": true}, &res)
		if err != nil {
			t.Fatal(err)
		}
		if res.Result.Value != "" {
			if err := json.Unmarshal([]byte(res.Result.Value), &last); err != nil {
				t.Fatal(err)
			}
			if ok(last) {
				return last
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the page did not show what was expected within %v; it shows %+v", uiWaitMax, last)
	return last
}

// screenshot saves a PNG of the whole page into -ui.out and returns its
// path.
func screenshot(t *testing.T, b *browser, session string) string {
	var shot struct {
		Data string `json:"data"`
	}
	if err := b.call(t.Context(), session, "Page.captureScreenshot",
		map[string]any{"format": "png", "captureBeyondViewport": true}, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	dir := *uiOut
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSale restocks a hot SKU (which sells out) and a few others, then
// checks out through every member's gateway until the returned func is
// called.
func startSale(t *testing.T, members []*chaos.Member) (stop func()) {
	client := &http.Client{Timeout: 5 * time.Second}
	// post returns the status and the "id" of the answer, if any.
	post := func(base, path, body string, admin bool) (int, string, error) {
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		if admin {
			req.Header.Set("Authorization", "Bearer "+uiToken)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		var answer struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(res.Body).Decode(&answer)
		return res.StatusCode, answer.ID, nil
	}
	skus := []string{"console-x", "tee-black-m", "tee-black-l", "mug-blue", "socks-3p", "cap-red"}
	for i, sku := range skus {
		qty := 100_000
		if i == 0 {
			qty = uiHotSKUStock
		}
		if code, _, err := post(members[0].Base(), "/v1/skus/"+sku+"/restock", fmt.Sprintf(`{"quantity":%d}`, qty), true); err != nil || code != 200 {
			t.Fatalf("restock %s: %d %v", sku, code, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range uiSaleWorkers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				sku := skus[0] // most checkouts want the hot SKU
				if i%3 == 0 {
					sku = skus[1+(i/3+w)%(len(skus)-1)]
				}
				base := members[(i+w)%len(members)].Base()
				body := fmt.Sprintf(`{"customer":"c-%d-%d","items":[{"sku":%q,"quantity":1}]}`, w, i, sku)
				code, id, _ := post(base, "/v1/orders", body, false)
				if code == http.StatusCreated && i%2 == 0 { // half of the orders are paid
					_, _, _ = post(base, "/v1/orders/"+id+"/pay", fmt.Sprintf(`{"payment_ref":"pay-%d-%d"}`, w, i), false)
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// browserOutputMax bounds the browser output kept for a failure report.
const browserOutputMax = 16 << 10

// capped keeps the last browserOutputMax bytes written to it.
type capped struct {
	mu  sync.Mutex
	buf []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if over := len(c.buf) - browserOutputMax; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}
