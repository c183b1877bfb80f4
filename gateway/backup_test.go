package gateway

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// fakeBackups streams a fixed body and records the request.
type fakeBackups struct {
	got  BackupRequest
	body []byte
}

func (f *fakeBackups) Backup(req BackupRequest) (func(io.Writer) error, error) {
	if req.Partition >= 64 {
		return nil, &InvalidFieldError{Field: "partition", Detail: "the node has partitions 0 to 63"}
	}
	f.got = req
	return func(w io.Writer) error {
		_, err := w.Write(f.body)
		return err
	}, nil
}

func TestBackupRoute(t *testing.T) {
	// Larger than every buffer on the way, so that the stream is written
	// in several pieces.
	body := bytes.Repeat([]byte("backup-bytes "), 40_000)
	fb := &fakeBackups{body: body}
	ts := newTestServer(t, newFakeEngine(), func(c *Config) { c.Backups = fb })

	wantProblem(t, ts.do(get("/v1/admin/backup")), 401, "unauthorized", "")
	wantProblem(t, ts.do(get("/v1/admin/backup?partition=x").admin()), 422, "invalid-field", "partition")
	wantProblem(t, ts.do(get("/v1/admin/backup?since=-1").admin()), 422, "invalid-field", "since")
	wantProblem(t, ts.do(get("/v1/admin/backup?since=3&parent=abc").admin()), 422, "invalid-field", "parent")
	wantProblem(t, ts.do(get("/v1/admin/backup?partition=64").admin()), 422, "invalid-field", "partition")

	r := ts.do(get("/v1/admin/backup").admin())
	if r.status != 200 || !bytes.Equal(r.body, body) || r.header("Content-Type") != "application/octet-stream" {
		t.Fatalf("full backup: %d, %d bytes, %q", r.status, len(r.body), r.header("Content-Type"))
	}
	if fb.got != (BackupRequest{Partition: -1}) {
		t.Fatalf("request %+v", fb.got)
	}
	parent := strings.Repeat("ab", 32)
	if r := ts.do(get("/v1/admin/backup?partition=7&since=42&parent=" + parent).admin()); r.status != 200 {
		t.Fatalf("incremental backup: %d %s", r.status, r.body)
	}
	if fb.got != (BackupRequest{Partition: 7, Since: 42, Parent: parent}) {
		t.Fatalf("request %+v", fb.got)
	}
}

func TestBackupRouteWithoutBackups(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	wantProblem(t, ts.do(get("/v1/admin/backup").admin()), 404, "not-found", "")
}
