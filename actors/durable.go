package actors

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// durableLog is the part of an actor shell that journals events and holds
// replies until they may be sent. Its rule: a reply leaves only once every
// event applied before it is durable. Commands keep being applied while a
// journal write is in flight; their events wait in a buffer and go out
// together as the next write, so a busy actor makes one journal write per
// flush, not one per message.
//
// At most one append per actor is in flight. If it fails, nothing after it
// was submitted, so the journal has no gap: the shell fails every held
// reply, drops its state and reloads from what is durable.
//
// The log is used only from its actor's Receive; the journal's callbacks
// reach it as messages (*appendDone, *snapshotDone).
type durableLog struct {
	id      string
	journal Journal
	// incarnation tells this activation's notices from those of an earlier
	// one that shared the PID (after a restart).
	incarnation uint64
	root        *actor.RootContext
	self        *actor.PID

	applied   uint64   // last sequence applied in memory
	submitted uint64   // last sequence handed to the journal
	durable   uint64   // last sequence the journal confirmed
	buffer    [][]byte // encoded events after submitted
	held      []heldReply
	// sent are the held replies handed to the appends in flight, in
	// submission order: each append's completion sends the replies that
	// wait only for it straight from the journal's callback, a mailbox
	// hop sooner than the actor's turn would (see flush). Until those
	// appends are answered, a reply that is due at once is held too, so
	// that replies still leave in order.
	sent []*sentOff
	// inflight counts the appends of the current flush still unanswered:
	// a buffer longer than the journal's AppendEventsMax goes out as
	// several appends, answered in order.
	inflight int

	// wake is when the actor must next be activated even if nobody sends
	// it anything (Unix nanoseconds, 0 for never), as of the applied
	// state; durableWake is the value the journal holds. Each append
	// carries wake; an append with no events carries a wake change alone.
	wake        int64
	durableWake int64
	// marks are the wake times of the states at command boundaries inside
	// the buffer (sequence and wake after each command), so that a buffer
	// split over several appends gives each append the wake time of the
	// state its last event leaves: a crash between two of them must not
	// leave events stored with a wake time that belongs to events lost.
	marks []wakeMark
	// born are identities that buffered commands bring to life, in
	// command order (bringToLife): each goes out in the append that
	// carries the last event of its command, in the same durable write.
	born []bornIdentity

	snapshotted  uint64 // sequence of the latest durable snapshot
	snapshotting bool   // a snapshot write is in flight

	// refused: the journal refused this identity's latest append because
	// the node's volume is full. It outlives reloads: until an append
	// succeeds, a wake time is not written alone (flush), or an order that
	// reloads would resubmit it at once, be refused again, and spin for as
	// long as the volume stays full. It goes out with the next events.
	refused bool

	// timers runs saveSnapshot's encode off the turn (nil: a goroutine).
	timers Timers

	// failed turns a held reply into the reply its caller gets when the
	// events behind it could not be made durable.
	failed func(reply any, detail string) any
}

type wakeMark struct {
	end  uint64 // the last sequence of a command's events
	wake int64  // the wake time of the state it leaves
}

// bornIdentity is a new identity's first events, brought to life by the
// command whose events end at end.
type bornIdentity struct {
	end uint64
	id  NewIdentity
}

// sentOff is the held replies that left with one append (see durableLog.sent). Whoever claims
// them answers them, once: the append's completion when it succeeded;
// the actor's turn when it failed, after the actor has dropped the state
// that was not written, so that a caller's retry never meets it; or the
// actor stopping with the append in flight (failSentOff), whose turn
// will never come.
type sentOff struct {
	replies []heldReply
	claimed atomic.Bool
}

// claim reports whether the caller may answer the replies.
func (s *sentOff) claim() bool { return s != nil && s.claimed.CompareAndSwap(false, true) }

type heldReply struct {
	to    *actor.PID
	reply any
	need  uint64 // the reply waits until durable >= need
}

// appendDone is the journal's answer to one append, sent to the actor.
type appendDone struct {
	incarnation uint64
	last        uint64
	wake        int64
	err         error
	// sent is the held replies that left with the append (see sentOff),
	// nil for none.
	sent *sentOff
}

// snapshotDone is the journal's answer to one snapshot write.
type snapshotDone struct {
	incarnation uint64
	seq         uint64
	err         error
}

var incarnations atomic.Uint64

func newDurableLog(id string, j Journal, timers Timers, failed func(reply any, detail string) any) *durableLog {
	return &durableLog{id: id, journal: j, timers: timers, failed: failed}
}

// start binds the log to a new activation whose state was recovered up to
// seq, with a snapshot at snap. wake is the wake time the recovered state
// implies; the journal holds the same value, because every append wrote
// the wake time of the state its events produced. An activation that
// follows a failed append passes rewrite, and then the next flush writes
// wake again, since a failed flush of several appends may have left the
// wake time of events that never became durable.
func (l *durableLog) start(ctx actor.Context, seq, snap uint64, wake int64, rewrite bool) {
	l.incarnation = incarnations.Add(1)
	l.root, l.self = ctx.ActorSystem().Root, ctx.Self()
	l.applied, l.submitted, l.durable, l.snapshotted = seq, seq, seq, snap
	l.buffer, l.held, l.snapshotting, l.inflight, l.sent = nil, nil, false, 0, nil
	l.marks, l.born = l.marks[:0], nil
	l.wake, l.durableWake = wake, wake
	// An identity with no events recovered has no wake time stored that
	// could be stale.
	if rewrite && seq > 0 {
		l.durableWake = -1
	}
}

// setWake records the wake time of the state as applied, after a
// command; the next flush makes it durable.
func (l *durableLog) setWake(at int64) {
	l.wake = at
	if l.applied <= l.submitted {
		return // nothing buffered: the wake goes out with the next append
	}
	if k := len(l.marks); k > 0 && l.marks[k-1].end == l.applied {
		l.marks[k-1].wake = at
		return
	}
	l.marks = append(l.marks, wakeMark{end: l.applied, wake: at})
}

// record adds the encoded event that was just applied as sequence
// applied+1.
func (l *durableLog) record(ev []byte) {
	l.applied++
	l.buffer = append(l.buffer, ev)
}

// bringToLife writes a new identity's first events (sequences 1, 2, ...)
// and wake time in the same durable write as the events the current
// command applied, which must be at least one: a reply held for the
// command leaves only once both are durable, and a crash keeps both or
// neither. The identity must be new (see Journal.AppendWith), and the
// command's events and the identity's together must fit in one append.
func (l *durableLog) bringToLife(id string, events [][]byte, wake int64) {
	l.born = append(l.born, bornIdentity{end: l.applied, id: NewIdentity{ID: id, Events: events, Wake: wake}})
}

// reply sends msg to the caller now if nothing it depends on is still
// pending, or holds it until the journal confirms.
func (l *durableLog) reply(ctx actor.Context, to *actor.PID, msg any) {
	if to == nil || msg == nil {
		return
	}
	if l.applied == l.durable {
		ctx.Send(to, msg)
		return
	}
	l.held = append(l.held, heldReply{to: to, reply: msg, need: l.applied})
}

// replyAt is reply for an answer that depends only on the events up to
// need, not on the ones applied after: it leaves once need is durable.
// Held replies are released in order, so it may leave later than that,
// never earlier.
func (l *durableLog) replyAt(ctx actor.Context, to *actor.PID, msg any, need uint64) {
	if to == nil || msg == nil {
		return
	}
	if need <= l.durable && len(l.held) == 0 && len(l.sent) == 0 {
		ctx.Send(to, msg)
		return
	}
	l.held = append(l.held, heldReply{to: to, reply: msg, need: min(need, l.applied)})
}

// flush submits the buffered events unless a flush is already in flight;
// the buffer then goes out when that one completes. A buffer longer than
// the journal takes in one append goes out as several appends, each ending
// at a command boundary with the wake time of the state there (the last
// one with the current wake time); the journal completes them in order.
// With no events buffered, a changed wake time goes out alone.
func (l *durableLog) flush() {
	if l.inflight > 0 || (len(l.buffer) == 0 && (l.wake == l.durableWake || l.refused)) {
		return
	}
	inc, root, self := l.incarnation, l.root, l.self
	submit := func(first uint64, events [][]byte, wake int64, born []NewIdentity) {
		last := first + uint64(len(events)) - 1
		l.inflight++
		// The held replies that wait for nothing after this append leave
		// from its completion, in order, before the actor hears of it.
		k := 0
		for k < len(l.held) && l.held[k].need <= last {
			k++
		}
		var sent *sentOff
		if k > 0 {
			sent = &sentOff{replies: l.held[:k:k]}
			l.held = l.held[k:]
			l.sent = append(l.sent, sent)
		}
		done := func(err error) {
			if err == nil && sent.claim() {
				for _, h := range sent.replies {
					root.Send(h.to, h.reply)
				}
			}
			root.Send(self, &appendDone{incarnation: inc, last: last, wake: wake, err: err, sent: sent})
		}
		if len(born) > 0 {
			l.journal.AppendWith(l.id, first, events, wake, born, done)
		} else {
			l.journal.Append(l.id, first, events, wake, done)
		}
	}
	if len(l.buffer) == 0 {
		submit(l.submitted+1, nil, l.wake, nil)
		return
	}
	limit := max(l.journal.AppendEventsMax(), 1)
	events := l.buffer
	l.buffer = nil
	for len(events) > 0 {
		n, wake := len(events), l.wake
		if n+l.bornEvents(l.submitted+uint64(n)) > limit {
			// No command boundary within the limit (no command makes
			// that many events today): due at once, so a crash after
			// this part wakes the actor early rather than never. The
			// part then completes no command, so it brings nothing to
			// life.
			n, wake = min(limit, n), wakeAtOnce
			b, bornN := 0, 0
			for _, m := range l.marks { // in command order
				if m.end <= l.submitted {
					continue
				}
				for ; b < len(l.born) && l.born[b].end <= m.end; b++ {
					bornN += len(l.born[b].id.Events)
				}
				if int(m.end-l.submitted)+bornN > limit {
					break
				}
				n, wake = int(m.end-l.submitted), m.wake
			}
		}
		k := 0
		for k < len(l.born) && l.born[k].end <= l.submitted+uint64(n) {
			k++
		}
		var born []NewIdentity
		if k > 0 {
			born = make([]NewIdentity, k)
			for i, b := range l.born[:k] {
				born[i] = b.id
			}
			l.born = l.born[k:]
		}
		submit(l.submitted+1, events[:n:n], wake, born)
		l.submitted += uint64(n)
		events = events[n:]
	}
	l.marks, l.born = l.marks[:0], nil
}

// bornEvents counts the events of the identities brought to life by the
// buffered commands that end at or before end.
func (l *durableLog) bornEvents(end uint64) int {
	n := 0
	for _, b := range l.born {
		if b.end > end {
			break
		}
		n += len(b.id.Events)
	}
	return n
}

// appended handles the journal's answer to one append. It returns false
// when the append failed: the held replies have been failed and the
// caller must reload its state from the journal (and pass rewrite to
// start). Notices of an earlier activation are ignored.
func (l *durableLog) appended(ctx actor.Context, m *appendDone) bool {
	if m.incarnation != l.incarnation {
		return true
	}
	l.inflight--
	if m.sent != nil && len(l.sent) > 0 && l.sent[0] == m.sent {
		l.sent[0] = nil
		l.sent = l.sent[1:]
	}
	l.refused = storageFull(m.err)
	if m.err != nil {
		l.failAll(ctx, journalFailureDetail(m.err))
		return false
	}
	l.durable = m.last
	if l.inflight == 0 {
		l.durableWake = m.wake
	}
	n := 0
	for n < len(l.held) && l.held[n].need <= l.durable {
		ctx.Send(l.held[n].to, l.held[n].reply)
		n++
	}
	l.held = l.held[n:]
	if len(l.held) == 0 {
		l.held = nil // let the backing array go after a burst
	}
	l.flush()
	return true
}

// storageFullPrefix starts the detail of an UNAVAILABLE reply whose events
// the journal refused because the node's volume is full (IsStorageFull).
const storageFullPrefix = "storage full: "

// journalFailureDetail is the detail of the UNAVAILABLE replies of
// commands whose events the journal did not write. A refusal for a full
// volume (an error with a method StorageFull() bool that returns true)
// gets a detail of its own, so that the node can tell the client that
// storage is full rather than that something failed.
func journalFailureDetail(err error) string {
	if storageFull(err) {
		return storageFullPrefix + strings.TrimPrefix(err.Error(), storageFullPrefix)
	}
	return "journal write failed: " + err.Error()
}

// storageFull reports whether err is the journal's refusal for a full
// volume.
func storageFull(err error) bool {
	if err == nil {
		return false // the common case, without the allocation errors.As makes
	}
	var full interface{ StorageFull() bool }
	return errors.As(err, &full) && full.StorageFull()
}

// journalFailureLevel is the level the shells log a failed append at: a
// refusal for a full volume only at debug, since the journal logs the
// episode once and a line per refused write would flood the log.
func journalFailureLevel(err error) slog.Level {
	if storageFull(err) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// IsStorageFull reports whether the detail of an UNAVAILABLE reply says
// that the journal refused the command's events because the node's
// volume is full. Nothing of the command was applied; it may be retried
// once space is freed.
func IsStorageFull(detail string) bool {
	return strings.HasPrefix(detail, storageFullPrefix)
}

// failSentOff answers the replies that left with the appends in flight
// with their failure form, unless their completion got to them first: the
// actor is stopping, and a failed append's notice would find no turn to
// answer them in.
func (l *durableLog) failSentOff(ctx actor.Context, detail string) {
	for _, s := range l.sent {
		if s.claim() {
			for _, h := range s.replies {
				ctx.Send(h.to, l.failed(h.reply, detail))
			}
		}
	}
	l.sent = nil
}

// failAll answers every held reply with its failure form.
func (l *durableLog) failAll(ctx actor.Context, detail string) {
	for _, h := range l.held {
		ctx.Send(h.to, l.failed(h.reply, detail))
	}
	l.held, l.buffer, l.born = nil, nil, nil
	l.marks = l.marks[:0]
}

// idle reports whether nothing is buffered, in flight or held, and the
// journal holds the current wake time.
func (l *durableLog) idle() bool {
	return l.inflight == 0 && len(l.buffer) == 0 && len(l.held) == 0 && l.wake == l.durableWake
}

// idleJournal reports whether no append is in flight.
func (l *durableLog) idleJournal() bool { return l.inflight == 0 }

// snapshotDue reports whether a snapshot should be taken now: every
// event it covers is durable and at least every events came since the last.
func (l *durableLog) snapshotDue(every uint64) bool {
	return every > 0 && !l.snapshotting && l.applied == l.durable && l.durable >= l.snapshotted+every
}

// saveSnapshot writes the state as of the durable sequence. encode runs on
// a goroutine of its own (Timers.Go), off the actor's turn, so it must read only what
// the turn handed it (bytes already encoded, or a frozen view); its error,
// like the journal's, comes back as *snapshotDone.
func (l *durableLog) saveSnapshot(encode func() ([]byte, error)) {
	l.snapshotting = true
	inc, seq, root, self, journal, id := l.incarnation, l.durable, l.root, l.self, l.journal, l.id
	done := func(err error) { root.Send(self, &snapshotDone{incarnation: inc, seq: seq, err: err}) }
	goOffTurn(l.timers, func() {
		state, err := encode()
		if err != nil {
			done(err)
			return
		}
		journal.SaveSnapshot(id, seq, state, done)
	})
}

// snapshotSaved records the journal's answer to a snapshot write and
// reports whether it is this activation's and succeeded.
func (l *durableLog) snapshotSaved(m *snapshotDone) bool {
	if m.incarnation != l.incarnation {
		return false
	}
	l.snapshotting = false
	if m.err != nil {
		return false
	}
	l.snapshotted = max(l.snapshotted, m.seq)
	return true
}

// restartCarry is what an activation hands from one instance to the next
// when its supervisor restarts it: the append that was in flight. The new
// instance loads only after that append has finished, so it sees what the
// old one wrote instead of colliding with it; commands that arrive
// meanwhile are held and then run in arrival order. Every actor shell
// creates one per activation (in its props) and follows the protocol:
// restarting on Restarting, waiting before loading on Started and before
// running a command, opened on every appendDone.
type restartCarry struct {
	inflight uint64 // incarnation whose appends are in flight; 0 for none
	pending  int    // how many of its appends are unanswered
	held     []envelope
	// fresh: the identity was just generated and has no journal yet, so
	// the first start need not read it. Restarts always read. Were the
	// identity not new after all, the journal refuses the first append
	// (it does not continue the identity's sequence) and the actor
	// reloads.
	fresh bool
}

// restartHeldMax bounds the commands held while a restarted actor waits
// for its predecessor's append; beyond it callers are answered
// UNAVAILABLE.
const restartHeldMax = 10_000

type envelope struct {
	msg    any
	sender *actor.PID
}

// restarting records, as the old instance goes, whether its log has an
// append in flight that the next instance must wait for.
func (c *restartCarry) restarting(l *durableLog) {
	if !l.idleJournal() {
		c.inflight, c.pending = l.incarnation, l.inflight
	}
}

// waiting reports whether the state must not be loaded yet.
func (c *restartCarry) waiting() bool { return c.inflight != 0 }

// hold keeps a command that arrived while waiting. It returns false when
// the bound is reached; the caller then answers UNAVAILABLE.
func (c *restartCarry) hold(cmd any, sender *actor.PID) bool {
	if len(c.held) >= restartHeldMax {
		return false
	}
	c.held = append(c.held, envelope{cmd, sender})
	return true
}

// opened reports whether m completes the predecessor's last append in
// flight. If so the wait is over: the caller loads its state and runs the
// returned commands in arrival order. Earlier appends of the predecessor
// are swallowed (consumed is true, done is false).
func (c *restartCarry) opened(m *appendDone) (held []envelope, done, consumed bool) {
	if c.inflight == 0 || m.incarnation != c.inflight {
		return nil, false, false
	}
	if c.pending--; c.pending > 0 {
		return nil, false, true
	}
	held = c.held
	c.inflight, c.held = 0, nil
	return held, true, true
}

// shell is what every actor shell offers the restart protocol: loading its
// state from the journal and running one command.
type shell interface {
	// load (re)builds the state from the journal; rewrite says that the
	// wake time the journal holds may be stale (see durableLog.start).
	load(ctx actor.Context, rewrite bool)
	command(ctx actor.Context, cmd any, sender *actor.PID)
}

// appendAnswered is the shells' common handling of an append's answer: it
// ends a restarted activation's wait for its predecessor's appends (then
// loads and runs the commands held meanwhile), or hands the answer to the
// log and reloads after a failed append. It reports whether the answer
// was this activation's own and succeeded, so the shell goes on with what
// follows a durable write.
func appendAnswered(ctx actor.Context, s shell, c *restartCarry, l *durableLog, m *appendDone) bool {
	if m.err != nil && m.sent.claim() { // of this activation or an earlier one
		for _, h := range m.sent.replies {
			ctx.Send(h.to, l.failed(h.reply, journalFailureDetail(m.err)))
		}
	}
	if held, done, consumed := c.opened(m); consumed {
		if done {
			s.load(ctx, true)
			for _, e := range held {
				s.command(ctx, e.msg, e.sender)
			}
		}
		return false
	}
	if !l.appended(ctx, m) {
		s.load(ctx, true)
		return false
	}
	return true
}
