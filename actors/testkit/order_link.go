package testkit

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// LinkAction is what the Link does with one order-to-SKU command.
type LinkAction int

const (
	// Deliver passes the command on and its answer back.
	Deliver LinkAction = iota
	// Drop loses the command: the SKU never sees it.
	Drop
	// DropReply delivers the command but loses the SKU's answer.
	DropReply
	// Duplicate delivers the command twice; the order gets the first
	// answer, the second is lost (as a late answer to a finished request).
	Duplicate
	// Hold keeps the command until Release or ReleaseAll: a delay, and,
	// released out of order, a reordering.
	Hold
)

// LinkMessage is one command from an order actor to a SKU actor.
type LinkMessage struct {
	SKU     string
	OrderID string
	Step    pb.SKUStep
	Msg     proto.Message
}

// Link sits between order actors and SKU actors and does to each command
// what its rule says. Its zero rule delivers everything. Safe for
// concurrent use.
type Link struct {
	system  *actor.ActorSystem
	skuPID  func(sku string) *actor.PID
	timeout time.Duration

	mu      sync.Mutex
	rule    func(LinkMessage) LinkAction
	proxies map[string]*actor.PID
	held    []heldCommand
	seen    []LinkMessage
}

type heldCommand struct {
	LinkMessage
	sender *actor.PID
}

// linkForward is sent to a proxy to deliver a held command.
type linkForward struct {
	msg    proto.Message
	sender *actor.PID
}

func newLink(system *actor.ActorSystem, skuPID func(string) *actor.PID, timeout time.Duration) *Link {
	return &Link{system: system, skuPID: skuPID, timeout: timeout, proxies: map[string]*actor.PID{}}
}

// SetRule decides the fate of every later command; nil delivers all.
func (l *Link) SetRule(rule func(LinkMessage) LinkAction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rule = rule
}

// Seen returns every command that reached the link, in arrival order.
func (l *Link) Seen() []LinkMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LinkMessage(nil), l.seen...)
}

// Held returns the commands held back, oldest first.
func (l *Link) Held() []LinkMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LinkMessage, len(l.held))
	for i, h := range l.held {
		out[i] = h.LinkMessage
	}
	return out
}

// hold describes, for a timeout error, what the link keeps from the SKUs;
// "" when nothing.
func (l *Link) hold(string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.held) == 0 {
		return ""
	}
	var first []string
	for _, h := range l.held[:min(len(l.held), linkHeldNamedMax)] {
		first = append(first, fmt.Sprintf("%s %s for %s", h.Step, h.SKU, h.OrderID))
	}
	return fmt.Sprintf("the Link holds %d SKU command(s) (Link.Release): %s", len(l.held), strings.Join(first, ", "))
}

// linkHeldNamedMax bounds the held commands a timeout error names.
const linkHeldNamedMax = 5

// Release delivers the held commands with the given indexes (as Held lists
// them) in the given order, and keeps the others.
func (l *Link) Release(indexes ...int) {
	l.mu.Lock()
	var out []heldCommand
	taken := map[int]bool{}
	for _, i := range indexes {
		out = append(out, l.held[i])
		taken[i] = true
	}
	var keep []heldCommand
	for i, h := range l.held {
		if !taken[i] {
			keep = append(keep, h)
		}
	}
	l.held = keep
	l.mu.Unlock()
	for _, h := range out {
		l.system.Root.Send(l.proxy(h.SKU), &linkForward{msg: h.Msg, sender: h.sender})
	}
}

// ReleaseAll delivers every held command, oldest first.
func (l *Link) ReleaseAll() {
	l.mu.Lock()
	n := len(l.held)
	l.mu.Unlock()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	l.Release(idx...)
}

// RequestSKU implements actors.OrderSKULink: the order actor talks to the
// SKU's proxy.
func (l *Link) RequestSKU(ctx actor.Context, sku string, msg proto.Message) {
	ctx.Request(l.proxy(sku), msg)
}

func (l *Link) proxy(sku string) *actor.PID {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pid, ok := l.proxies[sku]; ok {
		return pid
	}
	pid := l.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &linkProxy{link: l, sku: sku} }))
	l.proxies[sku] = pid
	return pid
}

// stopAll stops the proxies.
func (l *Link) stopAll() []*actor.Future {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*actor.Future
	for _, pid := range l.proxies {
		out = append(out, l.system.Root.StopFuture(pid))
	}
	return out
}

func (l *Link) decide(m LinkMessage, sender *actor.PID) LinkAction {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, m)
	a := Deliver
	if l.rule != nil {
		a = l.rule(m)
	}
	if a == Hold {
		l.held = append(l.held, heldCommand{m, sender})
	}
	return a
}

// linkProxy stands for one SKU actor.
type linkProxy struct {
	link *Link
	sku  string
}

func (p *linkProxy) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *linkForward:
		p.forward(ctx, m.msg, m.sender)
	case *pb.ReserveStock, *pb.CommitReservation, *pb.ReleaseReservation, *pb.ReturnStock:
		msg := m.(proto.Message)
		lm := LinkMessage{SKU: p.sku, Msg: msg}
		lm.OrderID, lm.Step = linkDescribe(msg)
		switch p.link.decide(lm, ctx.Sender()) {
		case Deliver:
			p.forward(ctx, msg, ctx.Sender())
		case DropReply:
			p.forward(ctx, msg, nil)
		case Duplicate:
			p.forward(ctx, msg, ctx.Sender())
			p.forward(ctx, msg, nil)
		}
	}
}

// forward asks the real SKU actor and hands its answer to sender (nil
// loses it).
func (p *linkProxy) forward(ctx actor.Context, msg proto.Message, sender *actor.PID) {
	f := ctx.RequestFuture(p.link.skuPID(p.sku), msg, p.link.timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err == nil && sender != nil {
			ctx.Send(sender, res)
		}
	})
}

func linkDescribe(msg proto.Message) (string, pb.SKUStep) {
	switch m := msg.(type) {
	case *pb.ReserveStock:
		return m.OrderId, pb.SKUStep_SKU_STEP_RESERVE
	case *pb.CommitReservation:
		return m.OrderId, pb.SKUStep_SKU_STEP_COMMIT
	case *pb.ReleaseReservation:
		return m.OrderId, pb.SKUStep_SKU_STEP_RELEASE
	case *pb.ReturnStock:
		return m.OrderId, pb.SKUStep_SKU_STEP_RETURN
	}
	return "", pb.SKUStep_SKU_STEP_UNSPECIFIED
}
