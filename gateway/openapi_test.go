package gateway

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The OpenAPI checks read docs/openapi.yaml with a small line parser instead
// of a YAML library (none is required by go.mod, and the gateway must not add
// one): under the top-level "paths:" key, a path is a key at indent 2, an
// operation a method key at indent 4, "responses:" is at indent 6 and each
// status a quoted key at indent 8. The document keeps to that layout.

const openAPIPath = "../docs/openapi.yaml"

// openAPIOps maps "METHOD /path" to its documented status codes.
func openAPIOps() (map[string][]int, string, error) {
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		return nil, "", err
	}
	ops := map[string][]int{}
	var inPaths, inResponses bool
	var path, op string
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(trimmed)
		if indent == 0 {
			inPaths = trimmed == "paths:"
			continue
		}
		if !inPaths {
			continue
		}
		switch {
		case indent == 2:
			path, op, inResponses = strings.TrimSuffix(trimmed, ":"), "", false
		case indent == 4:
			m := strings.TrimSuffix(trimmed, ":")
			if slices.Contains([]string{"get", "post", "put", "patch", "delete", "head", "options"}, m) {
				op = strings.ToUpper(m) + " " + path
				ops[op] = nil
			} else {
				op = ""
			}
			inResponses = false
		case indent == 6 && op != "":
			inResponses = trimmed == "responses:"
		case indent == 8 && op != "" && inResponses:
			code, err := strconv.Atoi(strings.Trim(strings.TrimSuffix(trimmed, ":"), `"'`))
			if err != nil {
				return nil, "", fmt.Errorf("%s: bad status key %q", op, trimmed)
			}
			ops[op] = append(ops[op], code)
		}
	}
	return ops, string(raw), sc.Err()
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	ops, doc, err := openAPIOps()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for id := routeHealthz; id < routeCount; id++ {
		spec := routeTable[id]
		label := spec.label()
		served[label] = true
		got, ok := ops[label]
		if !ok {
			t.Errorf("%s is served but not in openapi.yaml", label)
			continue
		}
		want := slices.Sorted(slices.Values(spec.statuses))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: openapi.yaml documents %v, the server answers %v", label, got, want)
		}
	}
	for op := range ops {
		if !served[op] {
			t.Errorf("openapi.yaml documents %s, which the server does not serve", op)
		}
	}
	for _, p := range problemTable {
		if !strings.Contains(doc, problemBase+p.slug+"\n") {
			t.Errorf("problem slug %q is not in openapi.yaml", p.slug)
		}
	}
	if !strings.Contains(doc, "openapi: 3.1") {
		t.Error("not an OpenAPI 3.1 document")
	}
}

// TestOpenAPIRoutesServed asks the running server for every documented
// operation and checks that it reaches its route (no 404 "no such route", no
// 405).
func TestOpenAPIRoutesServed(t *testing.T) {
	ops, _, err := openAPIOps()
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, newFakeEngine())
	for op := range ops {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{sku}", "A-1", "{id}", "o_01J00000000000000000000001", "{node}", "node-b").Replace(path)
		r := req{method: method, path: path, token: testToken}
		if method == "POST" {
			r.body = "{}"
		}
		got := ts.do(r)
		if got.status == 405 || (got.status == 404 && got.str("detail") == "no such route") {
			t.Errorf("%s: %d %s", op, got.status, got.body)
		}
	}
}

// checkObservedAgainstOpenAPI runs after all tests: every route and status a
// test server answered must be documented. Requests that match no route get
// 404 or 405, or 400/413 when fasthttp could not read them (a chunked body
// over the limit loses its headers).
func checkObservedAgainstOpenAPI() error {
	ops, _, err := openAPIOps()
	if err != nil {
		return err
	}
	observed.Lock()
	defer observed.Unlock()
	var problems []string
	for route, statuses := range observed.pairs {
		for status := range statuses {
			code, _ := strconv.Atoi(status)
			if route == routeTable[routeNone].label() {
				if !slices.Contains(routeTable[routeNone].statuses, code) {
					problems = append(problems, route+" "+status)
				}
				continue
			}
			if !slices.Contains(ops[route], code) {
				problems = append(problems, route+" answered "+status)
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("undocumented: %s", strings.Join(problems, "; "))
	}
	return nil
}
