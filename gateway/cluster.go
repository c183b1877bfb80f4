package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"
)

// ConflictError refuses a request that the current state does not allow
// and that no more specific problem describes: 409 conflict, with Detail
// (what is in the way and what to do about it) as the problem's detail.
// The cluster wiring returns it from Config.ForgetNode for a member that
// is alive.
type ConflictError struct {
	Detail string
}

func (e *ConflictError) Error() string {
	if e.Detail == "" {
		return "conflict"
	}
	return "conflict: " + e.Detail
}

// nodeParam unescapes and checks the {node} path segment (422 "node").
func (x *exchange) nodeParam(raw []byte) (string, *problem) {
	seg, ok := raw, true
	if bytes.IndexByte(raw, '%') >= 0 {
		x.seg, ok = unescapeSegment(x.seg[:0], raw)
		seg = x.seg
	}
	if !ok || !validIdentifier(seg, nodeNameBytesMax) {
		p := fieldProblem("node", identifierDetail(nodeNameBytesMax))
		return "", &p
	}
	return string(seg), nil
}

// forgetNode answers POST /v1/admin/cluster/members/{node}/forget. The
// checks keep the contract's order: JSON syntax of a body (400), the name
// (422), then the resource: a node that is not clustered has no members
// (404). Only a request that passes them all reaches Config.ForgetNode.
func (s *Server) forgetNode(x *exchange, param, body []byte) {
	if err := checkOptionalBody(body); err != nil {
		s.fail(x, err)
		return
	}
	node, p := x.nodeParam(param)
	if p != nil {
		s.problem(x, *p)
		return
	}
	if s.cfg.ForgetNode == nil {
		s.problem(x, problem{kind: probNotFound, detail: "this node is not clustered"})
		return
	}
	ctx, cancel := context.WithTimeout(s.base, s.cfg.RequestTimeout)
	view, err := s.cfg.ForgetNode(ctx, node)
	cancel()
	if err != nil {
		s.forgetFailed(x, node, err)
		return
	}
	b, err := json.Marshal(view)
	if err != nil {
		s.fail(x, err)
		return
	}
	s.reply(x, fasthttp.StatusOK, b)
}

// forgetFailed answers a refused forget. The generic details of not-found
// and unavailable speak of orders and partitions, so these two get their
// own; everything else goes through the problem table as usual.
func (s *Server) forgetFailed(x *exchange, node string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.problem(x, problem{kind: probNotFound, detail: "the cluster has no member named " + node})
	case errors.Is(err, ErrUnavailable):
		s.problem(x, problem{kind: probUnavailable, detail: "this node has not joined the cluster yet"})
	default:
		s.fail(x, err)
	}
}
