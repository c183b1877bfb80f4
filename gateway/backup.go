package gateway

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"
)

// backupPath is the route of backups, which get a write timeout of their
// own (Config.BackupWriteTimeout): the response is the whole journal.
const backupPath = "/v1/admin/backup"

// writeTimeouts gives backup responses their own write timeout; every
// other request keeps the server's (a zero RequestConfig changes nothing).
func (s *Server) writeTimeouts(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if string(h.RequestURI()) == backupPath || bytes.HasPrefix(h.RequestURI(), []byte(backupPath+"?")) {
		return fasthttp.RequestConfig{WriteTimeout: s.cfg.BackupWriteTimeout}
	}
	return fasthttp.RequestConfig{}
}

// backupPartitionsMax bounds the partition a backup request may name; the
// engine checks it against the node's own count.
const backupPartitionsMax = 4096

// Backups streams consistent backups of the node's journal for
// GET /v1/admin/backup. cmd/orderd implements it on the journal.
type Backups interface {
	// Backup checks req and returns what writes the backup. An
	// *InvalidFieldError refuses the request before anything is sent;
	// once write runs, the status is 200 and an error can only cut the
	// stream short (the file's missing checksum tells the client).
	Backup(req BackupRequest) (write func(w io.Writer) error, err error)
}

// BackupRequest says which backup to stream.
type BackupRequest struct {
	// Partition is one partition, or -1 for all of them.
	Partition int
	// Since is 0 for a full backup, else the version of an earlier backup
	// whose SHA-256 (hex) is Parent, when the client gave it.
	Since  uint64
	Parent string
}

// backup answers GET /v1/admin/backup?partition=N&since=V&parent=SHA256.
func (s *Server) backup(x *exchange) {
	if s.cfg.Backups == nil {
		s.problem(x, problem{kind: probNotFound, detail: "this node serves no backups"})
		return
	}
	req, p := backupRequest(x.ctx.QueryArgs())
	if p != nil {
		s.problem(x, *p)
		return
	}
	write, err := s.cfg.Backups.Backup(req)
	if err != nil {
		s.fail(x, err)
		return
	}
	ctx := x.ctx
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/octet-stream")
	log, rid := s.cfg.Logger, string(x.requestID)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		err := write(w)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			log.Error("backup stream cut short", "request_id", rid, "err", err)
		}
	})
}

func backupRequest(args *fasthttp.Args) (BackupRequest, *problem) {
	req := BackupRequest{Partition: -1}
	bad := func(field, detail string) (BackupRequest, *problem) {
		p := fieldProblem(field, detail)
		return BackupRequest{}, &p
	}
	if v := args.Peek("partition"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 || n >= backupPartitionsMax {
			return bad("partition", "a partition number, 0 to 4095")
		}
		req.Partition = n
	}
	if v := args.Peek("since"); v != nil {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return bad("since", "the version of an earlier backup, a non-negative integer")
		}
		req.Since = n
	}
	if v := args.Peek("parent"); v != nil {
		if _, err := hex.DecodeString(string(v)); err != nil || len(v) != 64 {
			return bad("parent", "the SHA-256 of the earlier backup, 64 hex digits")
		}
		req.Parent = string(v)
	}
	return req, nil
}
