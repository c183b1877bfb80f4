package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// requestTimeout bounds every request: a server that hangs shows up as
// "timeout" errors, never as a stuck benchmark.
const requestTimeout = 5 * time.Second

// Pseudo status codes for requests that got no HTTP answer, counted next to
// real statuses in the report.
const (
	statusNetError  = -1 // connection refused or reset
	statusTimeout   = -2 // no answer within requestTimeout
	statusOverflow  = -3 // open loop: more than the outstanding limit waiting, not sent
	statusBadAnswer = -4 // a 2xx whose body we could not read
)

func statusName(s int) string {
	switch s {
	case statusNetError:
		return "net_error"
	case statusTimeout:
		return "timeout"
	case statusOverflow:
		return "client_overflow"
	case statusBadAnswer:
		return "bad_answer"
	}
	return strconv.Itoa(s)
}

// client sends checkout API requests to one server.
type client struct {
	hc    *fasthttp.HostClient
	host  string
	token string
	ttl   int // ttl_seconds sent with each checkout; 0 leaves the server's default
}

func newClient(rawURL, token string, conns int) (*client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse -url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://host:port", rawURL)
	}
	hc := &fasthttp.HostClient{
		Addr:                u.Host,
		MaxConns:            conns,
		ReadTimeout:         requestTimeout,
		WriteTimeout:        requestTimeout,
		MaxIdleConnDuration: 10 * time.Second,
		MaxConnWaitTimeout:  requestTimeout,
	}
	return &client{hc: hc, host: u.Host, token: token}, nil
}

// do sends one request and returns the HTTP status (or a pseudo status) and
// the response body, which is only valid until the next call with the same buffers.
func (c *client) do(method, path string, body []byte, admin bool, req *fasthttp.Request, resp *fasthttp.Response) (int, []byte) {
	req.Reset()
	resp.Reset()
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost(c.host)
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	err := c.hc.DoTimeout(req, resp, requestTimeout)
	switch {
	case err == nil:
		return resp.StatusCode(), resp.Body()
	case errors.Is(err, fasthttp.ErrTimeout):
		return statusTimeout, nil
	default:
		return statusNetError, nil
	}
}

// skuView is the SKU view of API.md.
type skuView struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
}

func (c *client) restock(sku string, qty int64) (skuView, error) {
	return c.skuCall("POST", "/v1/skus/"+sku+"/restock", []byte(fmt.Sprintf(`{"quantity":%d}`, qty)), true)
}

func (c *client) getSKU(sku string) (skuView, error) {
	return c.skuCall("GET", "/v1/skus/"+sku, nil, false)
}

func (c *client) skuCall(method, path string, body []byte, admin bool) (skuView, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var v skuView
	status, b := c.do(method, path, body, admin, req, resp)
	if status != fasthttp.StatusOK {
		return v, fmt.Errorf("%s %s: status %s: %.200s", method, path, statusName(status), b)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s %s: decode SKU view: %w", method, path, err)
	}
	return v, nil
}

// orderID pulls "id" out of an order view without a full decode: the id is
// the first field every server here writes, and this runs on the hot path.
func orderID(body []byte) string {
	const key = `"id":`
	for i := 0; i+len(key) < len(body); i++ {
		if string(body[i:i+len(key)]) != key {
			continue
		}
		j := i + len(key)
		for j < len(body) && body[j] == ' ' {
			j++
		}
		if j >= len(body) || body[j] != '"' {
			return ""
		}
		for k := j + 1; k < len(body); k++ {
			if body[k] == '"' {
				return string(body[j+1 : k])
			}
		}
		return ""
	}
	return ""
}

// send performs op and returns the status; for a successful checkout it also
// returns the new order's ID.
func (c *client) send(o op, customer string, req *fasthttp.Request, resp *fasthttp.Response, buf []byte) (int, string, []byte) {
	switch o.Kind {
	case opCheckout:
		buf = append(buf[:0], `{"customer":"`...)
		buf = append(buf, customer...)
		buf = append(buf, `","items":[{"sku":"`...)
		buf = append(buf, o.SKU...)
		buf = append(buf, `","quantity":1}]`...)
		if c.ttl > 0 {
			buf = append(buf, `,"ttl_seconds":`...)
			buf = strconv.AppendInt(buf, int64(c.ttl), 10)
		}
		buf = append(buf, '}')
		status, body := c.do("POST", "/v1/orders", buf, false, req, resp)
		if status == fasthttp.StatusCreated {
			id := orderID(body)
			if id == "" {
				return statusBadAnswer, "", buf
			}
			return status, id, buf
		}
		return status, "", buf
	case opPay:
		buf = append(buf[:0], `{"payment_ref":"pay-`...)
		buf = append(buf, o.OrderID...)
		buf = append(buf, `"}`...)
		status, _ := c.do("POST", "/v1/orders/"+o.OrderID+"/pay", buf, false, req, resp)
		return status, "", buf
	case opCancel:
		status, _ := c.do("POST", "/v1/orders/"+o.OrderID+"/cancel", nil, false, req, resp)
		return status, "", buf
	case opGetOrder:
		status, _ := c.do("GET", "/v1/orders/"+o.OrderID, nil, false, req, resp)
		return status, "", buf
	default:
		status, _ := c.do("GET", "/v1/skus/"+o.SKU, nil, false, req, resp)
		return status, "", buf
	}
}
