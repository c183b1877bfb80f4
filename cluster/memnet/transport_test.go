package memnet

import (
	"errors"
	"io"
	"testing"
	"time"
)

const waitMax = 2 * time.Second

func recv(t *testing.T, tr *Transport, within time.Duration) (string, bool) {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return string(p.Buf), true
	case <-time.After(within):
		return "", false
	}
}

func pair(t *testing.T) (*Network, *Transport, *Transport) {
	t.Helper()
	n := New(1)
	a, b := n.NewTransport(), n.NewTransport()
	t.Cleanup(func() { a.Shutdown(); b.Shutdown() })
	return n, a, b
}

func TestPacketsCutAndHeal(t *testing.T) {
	n, a, b := pair(t)
	if _, err := a.WriteTo([]byte("one"), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if got, ok := recv(t, b, waitMax); !ok || got != "one" {
		t.Fatalf("got %q, %v", got, ok)
	}
	n.Cut(a.Addr(), b.Addr())
	a.WriteTo([]byte("lost"), b.Addr())
	if got, ok := recv(t, b, 50*time.Millisecond); ok {
		t.Fatalf("a cut link delivered %q", got)
	}
	if _, err := a.DialTimeout(b.Addr(), time.Second); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dial over a cut link: %v", err)
	}
	n.HealAll()
	a.WriteTo([]byte("two"), b.Addr())
	if got, ok := recv(t, b, waitMax); !ok || got != "two" {
		t.Fatalf("after heal: %q, %v", got, ok)
	}
}

func TestDelayAndDrop(t *testing.T) {
	n, a, b := pair(t)
	n.SetLink(a.Addr(), b.Addr(), Link{Delay: 100 * time.Millisecond})
	start := time.Now()
	a.WriteTo([]byte("late"), b.Addr())
	if _, ok := recv(t, b, waitMax); !ok || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("delayed packet: ok=%v after %v", ok, time.Since(start))
	}
	n.SetLink(a.Addr(), b.Addr(), Link{DropRate: 0.5})
	for range 200 {
		a.WriteTo([]byte("x"), b.Addr())
	}
	got := 0
	for {
		if _, ok := recv(t, b, 50*time.Millisecond); !ok {
			break
		}
		got++
	}
	if got < 50 || got > 150 {
		t.Fatalf("%d of 200 packets arrived at drop rate 0.5", got)
	}
}

func TestPauseHoldsTraffic(t *testing.T) {
	_, a, b := pair(t)
	b.Pause()
	a.WriteTo([]byte("held"), b.Addr())
	if _, ok := recv(t, b, 50*time.Millisecond); ok {
		t.Fatal("a paused node received a packet")
	}
	if _, err := a.DialTimeout(b.Addr(), 50*time.Millisecond); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dial to a paused node: %v", err)
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		b.WriteTo([]byte("from b"), a.Addr())
	}()
	select {
	case <-sent:
		t.Fatal("a paused node sent a packet")
	case <-time.After(50 * time.Millisecond):
	}
	b.Resume()
	<-sent
	if got, ok := recv(t, b, waitMax); !ok || got != "held" {
		t.Fatalf("after resume: %q, %v", got, ok)
	}
	if got, ok := recv(t, a, waitMax); !ok || got != "from b" {
		t.Fatalf("after resume: %q, %v", got, ok)
	}
}

func TestStreamsAndShutdown(t *testing.T) {
	n, a, b := pair(t)
	done := make(chan error, 1)
	go func() {
		c, err := a.DialTimeout(b.Addr(), time.Second)
		if err == nil {
			_, err = c.Write([]byte("hello"))
			c.Close()
		}
		done <- err
	}()
	s := <-b.StreamCh()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" || <-done != nil {
		t.Fatalf("stream: %q, %v", got, err)
	}
	// A crash: the stream open to b breaks and its address can be reused.
	go func() {
		c, err := a.DialTimeout(b.Addr(), time.Second)
		done <- err
		if err == nil {
			_, err = io.ReadAll(c)
		}
		done <- err
	}()
	<-b.StreamCh()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.Shutdown()
	select {
	case <-done:
	case <-time.After(waitMax):
		t.Fatal("a stream to a node that shut down stayed open")
	}
	if _, err := a.DialTimeout(b.Addr(), time.Second); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dial to a shut-down node: %v", err)
	}
	b2, err := n.NewTransportAt(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	b2.Shutdown()
}
