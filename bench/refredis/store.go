package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/orderengine/orderengine/bench/refapi"
	"github.com/redis/go-redis/v9"
)

// streamKey is the stream every order event is appended to; streamLenMax
// caps it (approximately) in case the consumer falls behind.
const (
	streamKey    = "orders"
	streamLenMax = 1_000_000
)

// placeScript checks every line, then reserves all of them, stores the order
// and appends the event: one atomic step, since Redis runs a script alone.
// KEYS: sku keys…, order key, stream. ARGV: quantities…, order JSON, expiry (unix ms).
var placeScript = redis.NewScript(`
local n = #KEYS - 2
for i = 1, n do
  local a = tonumber(redis.call('HGET', KEYS[i], 'available') or '0')
  if a < tonumber(ARGV[i]) then return {0, i, a} end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'available', -tonumber(ARGV[i]))
  redis.call('HINCRBY', KEYS[i], 'reserved', tonumber(ARGV[i]))
end
redis.call('HSET', KEYS[n+1], 'status', 'reserved', 'doc', ARGV[n+1], 'expires_ms', ARGV[n+2])
redis.call('XADD', KEYS[n+2], 'MAXLEN', '~', ` + strconv.Itoa(streamLenMax) + `, '*', 'event', 'placed', 'doc', ARGV[n+1])
return {1}
`)

// moveScript pays or cancels an order and moves its units between the SKU
// counters, appending the event. KEYS: order key, stream.
// ARGV: "pay" or "cancel", payment ref, now (unix ms).
// Returns {1, status, ref, doc}, {0} when unknown, {2, status} when refused.
var moveScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'status', 'ref', 'expires_ms', 'doc')
local st, ref = o[1], o[2] or ''
if not st then return {0} end
local from, to, status
if ARGV[1] == 'pay' then
  if st == 'paid' and ref == ARGV[2] then return {1, st, ref, o[4]} end
  if st ~= 'reserved' or tonumber(ARGV[3]) > tonumber(o[3]) then return {2, st} end
  from, to, status, ref = 'reserved', 'sold', 'paid', ARGV[2]
else
  if st == 'cancelled' then return {1, st, ref, o[4]} end
  if st == 'reserved' then from = 'reserved' elseif st == 'paid' then from = 'sold' else return {2, st} end
  to, status = 'available', 'cancelled'
end
for _, it in ipairs(cjson.decode(o[4]).items) do
  redis.call('HINCRBY', 'sku:' .. it.sku, from, -it.quantity)
  redis.call('HINCRBY', 'sku:' .. it.sku, to, it.quantity)
end
redis.call('HSET', KEYS[1], 'status', status, 'ref', ref)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ` + strconv.Itoa(streamLenMax) + `, '*', 'event', status, 'id', string.sub(KEYS[1], 7), 'ref', ref)
return {1, status, ref, o[4]}
`)

// store is refapi.Store on Redis. SKUs are hashes sku:{sku} with available,
// reserved and sold; orders are hashes order:{id} with status, ref, expiry
// and the order JSON.
type store struct{ rdb *redis.Client }

func skuKey(sku string) string  { return "sku:" + sku }
func orderKey(id string) string { return "order:" + id }

func (s *store) Restock(ctx context.Context, sku string, qty int64) (refapi.SKUView, error) {
	if err := s.rdb.HIncrBy(ctx, skuKey(sku), "available", qty).Err(); err != nil {
		return refapi.SKUView{}, fmt.Errorf("restock %s: %w", sku, err)
	}
	return s.SKU(ctx, sku)
}

func (s *store) SKU(ctx context.Context, sku string) (refapi.SKUView, error) {
	vals, err := s.rdb.HMGet(ctx, skuKey(sku), "available", "reserved", "sold").Result()
	if err != nil {
		return refapi.SKUView{}, fmt.Errorf("read %s: %w", sku, err)
	}
	if vals[0] == nil {
		return refapi.SKUView{}, refapi.ErrNotFound
	}
	v := refapi.SKUView{SKU: sku}
	for i, dst := range []*int64{&v.Available, &v.Reserved, &v.Sold} {
		if str, ok := vals[i].(string); ok {
			*dst, _ = strconv.ParseInt(str, 10, 64)
		}
	}
	return v, nil
}

func (s *store) Place(ctx context.Context, o *refapi.Order) error {
	doc, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode order: %w", err)
	}
	keys := make([]string, 0, len(o.Items)+2)
	args := make([]any, 0, len(o.Items)+2)
	for _, it := range o.Items {
		keys = append(keys, skuKey(it.SKU))
		args = append(args, it.Quantity)
	}
	keys = append(keys, orderKey(o.ID), streamKey)
	args = append(args, doc, o.ExpiresAt.UnixMilli())
	res, err := placeScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("place %s: %w", o.ID, err)
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return nil
	}
	line, _ := res[1].(int64)
	avail, _ := res[2].(int64)
	return &refapi.OutOfStockError{SKU: o.Items[line-1].SKU, Available: avail}
}

func (s *store) Order(ctx context.Context, id string) (refapi.Order, error) {
	vals, err := s.rdb.HMGet(ctx, orderKey(id), "status", "ref", "doc").Result()
	if err != nil {
		return refapi.Order{}, fmt.Errorf("read %s: %w", id, err)
	}
	if vals[0] == nil {
		return refapi.Order{}, refapi.ErrNotFound
	}
	st, _ := vals[0].(string)
	ref, _ := vals[1].(string)
	doc, _ := vals[2].(string)
	return decodeOrder(st, ref, doc)
}

func (s *store) Pay(ctx context.Context, id, ref string, now time.Time) (refapi.Order, error) {
	return s.move(ctx, id, "pay", ref, now)
}

func (s *store) Cancel(ctx context.Context, id string) (refapi.Order, error) {
	return s.move(ctx, id, "cancel", "", time.Now())
}

func (s *store) move(ctx context.Context, id, action, ref string, now time.Time) (refapi.Order, error) {
	res, err := moveScript.Run(ctx, s.rdb, []string{orderKey(id), streamKey}, action, ref, now.UnixMilli()).Slice()
	if err != nil {
		return refapi.Order{}, fmt.Errorf("%s %s: %w", action, id, err)
	}
	switch code, _ := res[0].(int64); code {
	case 0:
		return refapi.Order{}, refapi.ErrNotFound
	case 2:
		st, _ := res[1].(string)
		return refapi.Order{}, &refapi.TransitionError{Status: st}
	}
	st, _ := res[1].(string)
	gotRef, _ := res[2].(string)
	doc, _ := res[3].(string)
	return decodeOrder(st, gotRef, doc)
}

func decodeOrder(status, ref, doc string) (refapi.Order, error) {
	var o refapi.Order
	if err := json.Unmarshal([]byte(doc), &o); err != nil {
		return o, errors.Join(errors.New("decode stored order"), err)
	}
	o.Status = status
	if ref != "" {
		o.PaymentRef = &ref
	}
	return o, nil
}
