package main

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const clusterToken = "cluster-admin-token"

// clusterViewJSON is a view as a clustered node serves it (the shape in
// docs/openapi.yaml): node-a and node-b alive, node-c dead, 12 partitions,
// one moving and one held by nobody.
const clusterViewJSON = `{"mode":"cluster","cluster_id":"c-7f3c","self":"node-a","ready":true,"partitions":12,
"members":[
 {"name":"node-a","address":"127.0.0.1:7946","remote_address":"127.0.0.1:40123","generation":1764540000000000000,"state":"alive","self":true,"partitions":[0,1,2,3,7]},
 {"name":"node-b","address":"127.0.0.1:7947","generation":1764540000000000001,"state":"alive","self":false,"partitions":[4,5,6,8]},
 {"name":"node-c","address":"127.0.0.1:7948","generation":1764530000000000000,"state":"dead","self":false,"partitions":[9,10]}],
"table":[
 {"partition":0,"holder":"node-a","generation":1764540000000000000,"epoch":1,"state":"serving"},
 {"partition":1,"holder":"node-a","generation":1764540000000000000,"epoch":1,"state":"serving"},
 {"partition":2,"holder":"node-a","generation":1764540000000000000,"epoch":1,"state":"serving"},
 {"partition":3,"holder":"node-a","generation":1764540000000000000,"epoch":2,"state":"serving"},
 {"partition":4,"holder":"node-b","generation":1764540000000000001,"epoch":2,"state":"serving"},
 {"partition":5,"holder":"node-b","generation":1764540000000000001,"epoch":2,"state":"serving"},
 {"partition":6,"holder":"node-b","generation":1764540000000000001,"epoch":3,"state":"pending"},
 {"partition":7,"holder":"node-a","generation":1764540000000000000,"epoch":1,"state":"handing-off"},
 {"partition":8,"holder":"node-b","generation":1764540000000000001,"epoch":1,"state":"serving"},
 {"partition":9,"holder":"node-c","generation":1764530000000000000,"epoch":1,"state":"unavailable"},
 {"partition":10,"holder":"node-c","generation":1764530000000000000,"epoch":1,"state":"unavailable"},
 {"partition":11,"holder":"","generation":0,"epoch":0,"state":"none"}],
"tombstones":{"node-x":1764500000000000000}}`

const clusterViewText = `cluster c-7f3c, as node-a sees it (ready); 12 partitions

MEMBER         STATE  GENERATION           ADDRESS         PARTITIONS
node-a (self)  alive  1764540000000000000  127.0.0.1:7946  5
node-b         alive  1764540000000000001  127.0.0.1:7947  4
node-c         dead   1764530000000000000  127.0.0.1:7948  2

PARTITIONS (partition@epoch; first-last@epoch for a run; [state] unless serving)
node-a       0-2@1 3@2 7@1[handing-off]
node-b       4-5@2 6@3[pending] 8@1
node-c       9-10@1[unavailable]
(no holder)  11@0

FORGOTTEN (these generations never serve again)
node-x  generation 1764500000000000000
`

// fakeNode plays a running node's cluster API: GET /v1/cluster, and
// forget, which refuses node-a (alive) and unknown names and answers 503
// until ready.
type fakeNode struct {
	*httptest.Server
	mu       sync.Mutex
	view     string
	notReady bool
	forgets  []string // the names forget was asked for, authorized or not
}

func newFakeNode(t *testing.T, view string) *fakeNode {
	t.Helper()
	n := &fakeNode{view: view}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(n.view))
	})
	mux.HandleFunc("POST /v1/admin/cluster/members/{node}/forget", n.forget)
	n.Server = httptest.NewServer(mux)
	t.Cleanup(n.Close)
	return n
}

func (n *fakeNode) forget(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	node := r.PathValue("node")
	n.forgets = append(n.forgets, node)
	switch {
	case r.Header.Get("Authorization") != "Bearer "+clusterToken:
		problem(w, 401, "unauthorized", "this endpoint needs Authorization: Bearer <admin token>")
	case n.notReady:
		problem(w, 503, "unavailable", "this node has not joined the cluster yet")
	case node == "node-a" || node == "node-b":
		problem(w, 409, "conflict", "the node is alive; make sure it is down before forgetting it")
	case node != "node-c":
		problem(w, 404, "not-found", "the cluster has no member named "+node)
	default:
		n.view = strings.Replace(n.view, `"tombstones":{`, `"tombstones":{"node-c":1764530000000000000,`, 1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(n.view))
	}
}

func (n *fakeNode) forgotten() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.forgets...)
}

func problem(w http.ResponseWriter, status int, slug, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "https://orderengine.dev/problems/" + slug, "title": slug, "status": status, "detail": detail})
}

func TestClusterStatus(t *testing.T) {
	n := newFakeNode(t, clusterViewJSON)
	out := mustOrderctl(t, "cluster", "status", "-from", n.URL)
	if out != clusterViewText {
		t.Fatalf("status printed:\n%s\nwant:\n%s", out, clusterViewText)
	}
	out = mustOrderctl(t, "cluster", "status", "-from", n.URL+"/", "-json")
	if out != clusterViewJSON+"\n" {
		t.Fatalf("-json printed:\n%s", out)
	}
}

func TestClusterStatusSingleNode(t *testing.T) {
	n := newFakeNode(t, `{"mode":"single-node","members":[{"id":"local","state":"alive","self":true,"partitions":"all"}]}`)
	if out := mustOrderctl(t, "cluster", "status", "-from", n.URL); !strings.Contains(out, "single node, not clustered") {
		t.Fatalf("status printed:\n%s", out)
	}
}

func TestClusterStatusErrors(t *testing.T) {
	n := newFakeNode(t, `{"mode":"federation"}`)
	_, _, err := orderctl(t, "cluster", "status", "-from", n.URL)
	if err == nil || !strings.Contains(err.Error(), `mode "federation"`) || !strings.Contains(err.Error(), "-json") {
		t.Errorf("unknown mode: %v", err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	_, _, err = orderctl(t, "cluster", "status", "-from", gone.URL)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "is orderd running there?") {
		t.Errorf("connection refused: %v", err)
	}
	for _, args := range [][]string{
		{"cluster", "status"},
		{"cluster", "status", "-from", "127.0.0.1:8080"},
		{"cluster", "status", "-from", n.URL, "extra"},
		{"cluster"},
		{"cluster", "frobnicate"},
	} {
		if _, _, err := orderctl(t, args...); err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: %v", args, err)
		}
	}
}

func TestClusterForget(t *testing.T) {
	n := newFakeNode(t, clusterViewJSON)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(clusterToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustOrderctl(t, "cluster", "forget", "-from", n.URL, "-token-file", tokenFile, "-yes", "node-c")
	for _, want := range []string{
		"forgot node-c: its partitions go, empty, to the live members at the next epoch\n\ncluster c-7f3c",
		"node-c  generation 1764530000000000000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("forget printed no %q:\n%s", want, out)
		}
	}
	if got := n.forgotten(); len(got) != 1 || got[0] != "node-c" {
		t.Fatalf("the node was asked to forget %q", got)
	}
}

func TestClusterForgetRefusals(t *testing.T) {
	n := newFakeNode(t, clusterViewJSON)
	from, tok := []string{"-from", n.URL}, []string{"-token", clusterToken}
	args := func(parts ...[]string) []string {
		out := []string{"cluster", "forget"}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
		sent bool // whether the node is asked
	}{
		{"no -yes", args(from, tok, []string{"node-c"}),
			[]string{"not without -yes", "lost unless you restore it from a backup", "really down", "data directory wiped", "Run again with -yes"}, false},
		{"alive", args(from, tok, []string{"-yes", "node-a"}),
			[]string{"409 Conflict", "the node is alive", "stop node-a", "shows it dead"}, true},
		{"unknown", args(from, tok, []string{"-yes", "node-z"}),
			[]string{"404 Not Found", "no member named node-z", "orderctl cluster status lists the members"}, true},
		{"wrong token", args(from, []string{"-token", "guess", "-yes", "node-c"}),
			[]string{"401 Unauthorized", "check -token"}, true},
		{"no token", args(from, []string{"-yes", "node-c"}), []string{"admin token", "-token-file"}, false},
		{"missing token file", args(from, []string{"-token-file", "/nonexistent/token", "-yes", "node-c"}), []string{"-token-file"}, false},
		{"no node", args(from, tok, []string{"-yes"}), []string{"name the member"}, false},
		{"two nodes", args(from, tok, []string{"-yes", "node-c", "node-d"}), []string{"unexpected argument"}, false},
		{"flag after node", args(from, tok, []string{"node-c", "-yes"}), []string{"unexpected argument \"-yes\""}, false},
		{"bad name", args(from, tok, []string{"-yes", "node c"}), []string{"not a member name"}, false},
		{"no -from", args(tok, []string{"-yes", "node-c"}), []string{"-from"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(n.forgotten())
			out, _, err := orderctl(t, tc.args...)
			if err == nil {
				t.Fatalf("no error; printed:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if sent := len(n.forgotten()) > before; sent != tc.sent {
				t.Errorf("node asked: %v, want %v", sent, tc.sent)
			}
			t.Logf("%v", err)
		})
	}
	n.mu.Lock()
	n.notReady = true
	n.mu.Unlock()
	_, _, err := orderctl(t, args(from, tok, []string{"-yes", "node-c"})...)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "retry in a moment") {
		t.Errorf("not ready: %v", err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	_, _, err = orderctl(t, "cluster", "forget", "-from", gone.URL, "-token", clusterToken, "-yes", "node-c")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "is orderd running there?") {
		t.Errorf("connection refused: %v", err)
	}
}

func TestClusterSubcommandHelp(t *testing.T) {
	for _, sub := range []string{"status", "forget"} {
		_, errOut, err := orderctl(t, "cluster", sub, "-h")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "Examples:") || !strings.Contains(errOut, "orderctl cluster "+sub) {
			t.Errorf("cluster %s -h: %v\n%s", sub, err, errOut)
		}
	}
}
