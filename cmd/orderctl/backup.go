package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orderengine/orderengine/persistence"
)

// backupConnectTimeout bounds connecting to a node and receiving its
// response headers; the stream itself may take as long as it takes.
const backupConnectTimeout = 30 * time.Second

const backupUsage = `Usage:
  orderctl backup -from http://ADDR -token TOKEN -o FILE [-partition N] [-since FILE|VERSION]
  orderctl backup -data DIR -o FILE [-partition N] [-since FILE|VERSION]

Writes one file: a header (format, node, partitions, journal version, time),
the data, and a SHA-256 over the whole. A running node streams a consistent
backup through its admin API (-from, with the admin token); a stopped node's
data directory is read directly (-data; it must not be in use). -since makes
an incremental backup holding what changed after an earlier backup of the
same node. The file is written under FILE.partial and renamed once it is
complete and checked, so FILE is never a partial backup.

Examples:
  orderctl backup -from http://127.0.0.1:8080 -token "$(cat data/admin-token)" -o full.backup
  orderctl backup -from http://127.0.0.1:8080 -token-file data/admin-token -since full.backup -o inc1.backup
  orderctl backup -data /var/lib/orderd -partition 7 -o p7.backup
`

var backupCmd = command{
	name:    "backup",
	summary: "write a backup of a running node or of a stopped node's data directory",
	usage:   backupUsage,
	run:     runBackup,
}

func runBackup(ctx context.Context, e *env, args []string) error {
	fs := e.flags("backup", backupUsage)
	from := fs.String("from", "", "base URL of a running node (http://ADDR)")
	token := fs.String("token", "", "the node's admin token (with -from)")
	tokenFile := fs.String("token-file", "", "a file holding the admin token (with -from)")
	data := fs.String("data", "", "data directory of a stopped node")
	out := fs.String("o", "", "backup file to write (required)")
	partition := fs.Int("partition", persistence.AllPartitions, "back up this partition only (-1: all)")
	since := fs.String("since", "", "an earlier backup file, or its version: write an incremental backup")
	node := fs.String("node", "", "node name for the header of an offline backup (default: the host name)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	switch {
	case *out == "":
		return errors.New("backup: -o FILE is required")
	case (*from == "") == (*data == ""):
		return errors.New("backup: give either -from http://ADDR (a running node) or -data DIR (a stopped one)")
	}
	sinceVersion, parent, err := parseSince(*since)
	if err != nil {
		return err
	}
	start := time.Now()
	partial := *out + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	bar := newProgress(e.stderr, -1, "backup", true)
	if *from != "" {
		err = backupLive(ctx, f, *from, *token, *tokenFile, *partition, sinceVersion, parent, bar.add)
	} else {
		err = backupOffline(f, *data, *node, *partition, sinceVersion, parent, bar.add)
	}
	bar.done()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var info persistence.BackupInfo
	if err == nil {
		// Check what arrived: a stream cut short is caught here.
		info, err = checkFile(partial)
	}
	if err == nil {
		err = os.Rename(partial, *out)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("backup: %w", err), removeIfExists(partial))
	}
	printBackup(e.stdout, *out, info, time.Since(start))
	return nil
}

// parseSince reads -since: a version number, or a backup file whose
// version and checksum the incremental continues.
func parseSince(since string) (version uint64, parent string, err error) {
	if since == "" {
		return 0, "", nil
	}
	if v, err := strconv.ParseUint(since, 10, 64); err == nil {
		return v, "", nil
	}
	info, err := checkFile(since)
	if err != nil {
		return 0, "", fmt.Errorf("backup: -since %s: %w", since, err)
	}
	return info.Header.Version, info.Checksum, nil
}

func checkFile(name string) (persistence.BackupInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return persistence.BackupInfo{}, err
	}
	defer f.Close()
	info, err := persistence.CheckBackup(f, nil)
	if err != nil {
		return persistence.BackupInfo{}, fmt.Errorf("%s: %w", name, err)
	}
	return info, nil
}

func backupOffline(w io.Writer, data, node string, partition int, since uint64, parent string, progress func(int64)) error {
	dir, err := existingJournal(data)
	if err != nil {
		return err
	}
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			node = "orderd"
		}
	}
	opts := persistence.BackupOptions{Partition: partition, Since: since, Parent: parent, Node: node, Progress: progress}
	_, err = persistence.BackupDir(dir, w, opts)
	switch {
	case errors.Is(err, persistence.ErrDirectoryLocked):
		return fmt.Errorf("the data directory %s is in use by a running orderd; stop it, "+
			"or back the running node up with orderctl backup -from http://ADDR -token TOKEN -o FILE", data)
	case errors.Is(err, persistence.ErrNotClosedCleanly):
		return fmt.Errorf("%s: %w; or back the running node up with -from", data, err)
	}
	return err
}

func backupLive(ctx context.Context, w io.Writer, from, token, tokenFile string, partition int, since uint64,
	parent string, progress func(int64)) error {
	token, err := adminToken(token, tokenFile)
	if err != nil {
		return err
	}
	base, err := nodeURL(from)
	if err != nil {
		return err
	}
	q := url.Values{}
	if partition != persistence.AllPartitions {
		q.Set("partition", strconv.Itoa(partition))
	}
	if since != 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	if parent != "" {
		q.Set("parent", parent)
	}
	u := base.JoinPath("/v1/admin/backup")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: backupConnectTimeout,
		Proxy: http.ProxyFromEnvironment}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s for a backup: %w (is orderd running there?)", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s refused the backup: %s", base, problemText(resp))
	}
	_, err = io.Copy(w, io.TeeReader(resp.Body, progressWriter(progress)))
	if err != nil {
		return fmt.Errorf("receive backup from %s: %w", base, err)
	}
	return nil
}

// adminToken returns the admin token that -token or -token-file gives.
func adminToken(token, tokenFile string) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return "", errors.New("-from needs the node's admin token: -token TOKEN or -token-file FILE " +
			"(orderd stores a generated one in its data directory)")
	}
	return token, nil
}

// nodeURL parses -from, the base URL of a running node.
func nodeURL(from string) (*url.URL, error) {
	base, err := url.Parse(strings.TrimRight(from, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("-from %q: want the node's base URL, such as http://127.0.0.1:8080", from)
	}
	return base, nil
}

// problemText renders a problem response, with advice for the usual ones.
func problemText(resp *http.Response) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	text := resp.Status
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		text += ": " + p.Detail
	}
	if resp.StatusCode == http.StatusUnauthorized {
		text += " (check -token: it is the node's admin token)"
	}
	return text
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	p(int64(len(b)))
	return len(b), nil
}

func removeIfExists(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func printBackup(w io.Writer, name string, info persistence.BackupInfo, took time.Duration) {
	h := info.Header
	kind := "full"
	if h.Incremental() {
		kind = fmt.Sprintf("incremental since version %d", h.Since)
	}
	part := "all partitions"
	if h.Partition != persistence.AllPartitions {
		part = fmt.Sprintf("partition %d of %d", h.Partition, h.Partitions)
	}
	fmt.Fprintf(w, "wrote %s: %s backup of %s, node %s, journal version %d\n", filepath.Base(name), kind, part, h.Node, h.Version)
	fmt.Fprintf(w, "  %d actors, %d keys written, %d kept; %s in %s (%s)\n", info.Identities, info.Puts, info.Keeps,
		mib(info.Bytes), took.Round(time.Millisecond), rate(info.Bytes, took))
	fmt.Fprintf(w, "  sha256 %s\n", info.Checksum)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB/s", float64(n)/(1<<20)/d.Seconds())
}
