package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// clusterRequestTimeout bounds one request to a node, connection and
// answer together: status and forget answer at once.
const clusterRequestTimeout = 30 * time.Second

// clusterResponseBytesMax bounds what orderctl reads of a cluster view; a
// view of 4096 partitions is well under 1 MiB.
const clusterResponseBytesMax = 8 << 20

// nodeNameBytesMax is the longest member name the gateway accepts.
const nodeNameBytesMax = 128

const clusterUsage = `Usage:
  orderctl cluster status -from http://ADDR [-json]
  orderctl cluster forget -from http://ADDR -token TOKEN|-token-file FILE -yes NODE

status shows what a running node sees of its cluster; forget removes a dead
member for good so that its partitions go to the live ones. Run
"orderctl cluster status -h" or "orderctl cluster forget -h" for details.

Examples:
  orderctl cluster status -from http://127.0.0.1:8080
  orderctl cluster forget -from http://127.0.0.1:8080 -token-file data/admin-token -yes node-c
`

const clusterStatusUsage = `Usage:
  orderctl cluster status -from http://ADDR [-json]

Asks a running node for its view of the cluster (GET /v1/cluster; no token
needed) and prints each member with its state and generation, then which
partitions each member holds, as partition@epoch (runs of partitions of one
epoch as first-last@epoch, a state other than serving in brackets), then
the forgotten members. -json prints the node's answer as it is.

Examples:
  orderctl cluster status -from http://127.0.0.1:8080
  orderctl cluster status -from http://127.0.0.1:8080 -json | jq '.members[] | select(.state == "dead")'
`

const clusterForgetUsage = `Usage:
  orderctl cluster forget -from http://ADDR -token TOKEN|-token-file FILE -yes NODE

Forgets the member NODE, which must be down (POST
/v1/admin/cluster/members/NODE/forget on any live member, with the admin
token). Its generation is tombstoned, and at the next epoch its partitions
go, empty, to the live members. Whatever only NODE held is lost unless it is
restored from a backup; NODE can rejoin only with a wiped data directory.
Without -yes nothing is sent. A member that is alive is refused: stop it
first and wait until status shows it dead. Prints the cluster afterwards.

Examples:
  orderctl cluster status -from http://127.0.0.1:8080
  orderctl cluster forget -from http://127.0.0.1:8080 -token-file data/admin-token -yes node-c
`

var clusterCmd = command{
	name:    "cluster",
	summary: "show a running node's cluster, or forget a dead member",
	usage:   clusterUsage,
	run:     runCluster,
}

func runCluster(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stderr, strings.TrimSpace(clusterUsage))
		if len(args) == 0 {
			return errors.New("cluster: give a subcommand: status or forget")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "status":
		return runClusterStatus(ctx, e, args[1:])
	case "forget":
		return runClusterForget(ctx, e, args[1:])
	}
	return fmt.Errorf("cluster: unknown subcommand %q; want status or forget", args[0])
}

func runClusterStatus(ctx context.Context, e *env, args []string) error {
	fs := e.flags("cluster status", clusterStatusUsage)
	from := fs.String("from", "", "base URL of a running node (http://ADDR, required)")
	raw := fs.Bool("json", false, "print the node's JSON answer as it is")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("cluster status: -from http://ADDR is required")
	}
	base, err := nodeURL(*from)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("/v1/cluster").String(), nil)
	if err != nil {
		return err
	}
	body, err := askNode(base, req)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	if *raw {
		return writeJSONLine(e.stdout, body)
	}
	return printClusterView(e.stdout, body)
}

func runClusterForget(ctx context.Context, e *env, args []string) error {
	fs := e.flags("cluster forget", clusterForgetUsage)
	from := fs.String("from", "", "base URL of a running node (http://ADDR, required)")
	token := fs.String("token", "", "the node's admin token")
	tokenFile := fs.String("token-file", "", "a file holding the admin token")
	yes := fs.Bool("yes", false, "forget without asking: NODE's data is lost unless restored from a backup")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("cluster forget: name the member to forget: orderctl cluster forget -from http://ADDR -token TOKEN -yes NODE")
	}
	node := fs.Arg(0)
	switch {
	case *from == "":
		return errors.New("cluster forget: -from http://ADDR is required (any live member)")
	case !validNodeName(node):
		return fmt.Errorf("cluster forget: %q is not a member name: 1 to %d characters of A-Z a-z 0-9 . _ : -", node, nodeNameBytesMax)
	case !*yes:
		return forgetRefusal(node)
	}
	base, err := nodeURL(*from)
	if err != nil {
		return fmt.Errorf("cluster forget: %w", err)
	}
	tok, err := adminToken(*token, *tokenFile)
	if err != nil {
		return fmt.Errorf("cluster forget: %w", err)
	}
	u := base.JoinPath("/v1/admin/cluster/members", node, "forget")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	body, err := askNode(base, req)
	var refused *refusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("cluster forget %s: %w%s", node, err, forgetAdvice(refused.status, node))
	}
	if err != nil {
		return fmt.Errorf("cluster forget %s: %w", node, err)
	}
	fmt.Fprintf(e.stdout, "forgot %s: its partitions go, empty, to the live members at the next epoch\n\n", node)
	return printClusterView(e.stdout, body)
}

// forgetRefusal is the answer to a forget without -yes: what forgetting
// does, so that nobody learns it from the outcome.
func forgetRefusal(node string) error { return refusal(node) }

// refusal is forgetRefusal's error: several lines, for people.
type refusal string

func (node refusal) Error() string {
	return fmt.Sprintf(`cluster forget: not without -yes. Forgetting %[1]s is for good:
  - its generation is tombstoned and its partitions go, empty, to the live members at the next epoch;
  - whatever only %[1]s held (stock, reservations, orders) is lost unless you restore it from a backup;
  - %[1]s must be really down: stopped, or its host gone, and shown dead by orderctl cluster status;
  - to rejoin, %[1]s must start with its data directory wiped.
Run again with -yes to forget %[1]s.`, string(node))
}

// forgetAdvice says what to do about a refused forget.
func forgetAdvice(status int, node string) string {
	switch status {
	case http.StatusConflict:
		return fmt.Sprintf("; stop %s (or make sure its host is gone), wait until orderctl cluster status shows it dead, and run forget again", node)
	case http.StatusNotFound:
		return "; orderctl cluster status lists the members"
	case http.StatusServiceUnavailable:
		return "; retry in a moment, or ask another member with -from"
	}
	return ""
}

// validNodeName checks a member name as the gateway does, so that a typo
// is caught before anything is sent.
func validNodeName(s string) bool {
	if len(s) == 0 || len(s) > nodeNameBytesMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return false
		}
	}
	return true
}

// refusedError is a node's answer other than 200.
type refusedError struct {
	status int
	text   string
}

func (e *refusedError) Error() string { return e.text }

// askNode sends req and returns the body of a 200 answer; any other answer
// is a *refusedError with the problem's detail.
func askNode(base *url.URL, req *http.Request) ([]byte, error) {
	client := &http.Client{Timeout: clusterRequestTimeout,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s: %w (is orderd running there?)", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &refusedError{status: resp.StatusCode, text: base.String() + " refused: " + problemText(resp)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, clusterResponseBytesMax+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the answer of %s: %w", base, err)
	case len(body) > clusterResponseBytesMax:
		return nil, fmt.Errorf("the answer of %s is over %d bytes", base, clusterResponseBytesMax)
	}
	return body, nil
}

func writeJSONLine(w io.Writer, body []byte) error {
	if _, err := w.Write(body); err != nil {
		return err
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}
