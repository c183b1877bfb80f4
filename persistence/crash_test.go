package persistence

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The crash test runs a child process (this test binary again) that appends
// under load and prints "id first n" after each acknowledged append, kills
// it with SIGKILL at random moments, and checks what survived.
const (
	helperEnv          = "PERSISTENCE_HELPER"
	helperDirEnv       = "PERSISTENCE_HELPER_DIR"
	helperSeedEnv      = "PERSISTENCE_HELPER_SEED"
	crashIdentities    = 12
	crashCycles        = 24
	crashTimeMax       = 60 * time.Second
	crashChildLifeMax  = 30 * time.Second // a child that is never killed stops by itself
	crashSnapshotEvery = 40
)

func crashID(k int) string { return fmt.Sprintf("crash/%d", k) }

// crashWake is the wake time the child stores with the append that ends at
// last, so that the parent can check it was written with those events.
func crashWake(last uint64) int64 { return int64(last) * 1000 }

// crashEvent is the deterministic payload of event seq, written by an append
// of n events starting at first: the parent can check every byte and which
// append an event belongs to.
func crashEvent(id string, seq, first uint64, n int) []byte {
	head := fmt.Sprintf("%s|%d|%d|%d|", id, seq, first, n)
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + seq%26)}, int(seq*7%200))...)
}

func parseCrashEvent(b []byte) (id string, seq, first uint64, n int, err error) {
	f := strings.SplitN(string(b), "|", 5)
	if len(f) != 5 {
		return "", 0, 0, 0, fmt.Errorf("malformed event %q", b)
	}
	seq, err1 := strconv.ParseUint(f[1], 10, 64)
	first, err2 := strconv.ParseUint(f[2], 10, 64)
	n, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", 0, 0, 0, fmt.Errorf("malformed event %q", b)
	}
	return f[0], seq, first, n, nil
}

// TestHelperProcess is the child. It only runs when the crash test starts it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "crash-child" {
		t.Skip("runs only as the crash test's child process")
	}
	seed, _ := strconv.ParseUint(os.Getenv(helperSeedEnv), 10, 64)
	o := DefaultOptions()
	o.CompactInterval = 20 * time.Millisecond
	j, err := Open(os.Getenv(helperDirEnv), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	for k := range crashIdentities {
		go crashAppender(j, k, rand.New(rand.NewPCG(seed, uint64(k))), &out)
	}
	time.Sleep(crashChildLifeMax)
	os.Exit(0)
}

func crashAppender(j *Journal, k int, rng *rand.Rand, out *sync.Mutex) {
	id := crashID(k)
	last, err := j.LastSequence(id)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child last sequence:", err)
		os.Exit(2)
	}
	for {
		n := 1 + rng.IntN(5)
		events := make([][]byte, n)
		for i := range events {
			events[i] = crashEvent(id, last+1+uint64(i), last+1, n)
		}
		done, ch := result()
		j.Append(id, last+1, events, crashWake(last+uint64(n)), done)
		if err := <-ch; err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(2)
		}
		out.Lock()
		fmt.Fprintf(os.Stdout, "%s %d %d\n", id, last+1, n) // one write: the line is whole or absent
		out.Unlock()
		before := last
		last += uint64(n)
		if k%2 == 0 && last/crashSnapshotEvery != before/crashSnapshotEvery {
			done, ch := result()
			j.SaveSnapshot(id, last, fmt.Appendf(nil, "snap:%d", last), done)
			if err := <-ch; err != nil {
				fmt.Fprintln(os.Stderr, "child snapshot:", err)
				os.Exit(2)
			}
		}
	}
}

type ackedAppend struct {
	first uint64
	n     int
}

func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	acked := make(map[string][]ackedAppend)
	start := time.Now()
	cycles := 0
	for ; cycles < crashCycles && time.Since(start) < crashTimeMax; cycles++ {
		lines := runAndKill(t, dir, rng)
		for _, l := range lines {
			var id string
			var a ackedAppend
			if _, err := fmt.Sscanf(l, "%s %d %d", &id, &a.first, &a.n); err != nil {
				t.Fatalf("child line %q: %v", l, err)
			}
			acked[id] = append(acked[id], a)
		}
		checkCrashSurvivors(t, dir, acked)
	}
	total := 0
	for _, as := range acked {
		total += len(as)
	}
	t.Logf("%d kill cycles in %v, %d acknowledged appends checked", cycles, time.Since(start).Round(time.Millisecond), total)
	if cycles < 20 || total == 0 {
		t.Fatalf("only %d cycles and %d acknowledged appends", cycles, total)
	}
}

// runAndKill starts a child, lets it work for a random while and kills it.
// It returns the whole lines the child printed.
func runAndKill(t *testing.T, dir string, rng *rand.Rand) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=crash-child", helperDirEnv+"="+dir,
		helperSeedEnv+"="+strconv.FormatUint(rng.Uint64(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	firstLine := make(chan struct{})
	linesCh := make(chan []string, 1)
	go func() { linesCh <- readLines(stdout, firstLine) }()
	if rng.IntN(5) == 0 {
		// Sometimes kill during startup or recovery.
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
	} else {
		select {
		case <-firstLine:
		case <-time.After(waitMax):
			t.Fatalf("child printed nothing; stderr:\n%s", stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lines := <-linesCh
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child ended on its own (%v); stderr:\n%s", err, stderr.String())
	}
	return lines
}

// readLines reads whole lines until EOF; a line cut by the kill has no
// newline and is dropped, since its append was acknowledged to nobody.
func readLines(r io.Reader, first chan struct{}) []string {
	var lines []string
	br := bufio.NewReader(r)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return lines
		}
		if len(lines) == 0 {
			close(first)
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
}

func checkCrashSurvivors(t *testing.T, dir string, acked map[string][]ackedAppend) {
	t.Helper()
	j, err := Open(dir, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	for k := range crashIdentities {
		id := crashID(k)
		snap, state, err := j.LoadSnapshot(id)
		if err != nil {
			t.Fatal(err)
		}
		if snap > 0 && string(state) != fmt.Sprintf("snap:%d", snap) {
			t.Fatalf("%s: snapshot at %d holds %q", id, snap, state)
		}
		groups := make(map[uint64]ackedAppend) // first -> append, from the stored events
		var cur ackedAppend                    // the append the last event belongs to
		last := snap
		if err := j.Replay(id, snap, func(seq uint64, e []byte) error {
			gotID, s, first, n, err := parseCrashEvent(e)
			switch {
			case err != nil:
				return err
			case gotID != id || s != seq || seq != last+1:
				return fmt.Errorf("event %d after %d reads %q", seq, last, e)
			case !bytes.Equal(e, crashEvent(id, seq, first, n)):
				return fmt.Errorf("event %d has the wrong bytes", seq)
			case seq == first && cur.n > 0 && cur.first+uint64(cur.n)-1 != last:
				return fmt.Errorf("append %+v is only partly stored", cur)
			case seq != first && first != cur.first:
				return fmt.Errorf("event %d of append %d+%d follows append %+v", seq, first, n, cur)
			}
			cur = ackedAppend{first, n}
			groups[first] = cur
			last = seq
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if cur.n > 0 && cur.first+uint64(cur.n)-1 != last {
			t.Fatalf("%s: append %d+%d is only partly stored (last %d)", id, cur.first, cur.n, last)
		}
		var wake int64
		if err := j.db.View(func(txn *badger.Txn) (err error) {
			wake, _, err = readWake(txn, j.partition(id), id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if wake != crashWake(last) {
			t.Fatalf("%s: wake time %d with last event %d, want %d", id, wake, last, crashWake(last))
		}
		for _, a := range acked[id] {
			end := a.first + uint64(a.n) - 1
			if end > last {
				t.Fatalf("%s: acknowledged append %d..%d lost; last stored %d", id, a.first, end, last)
			}
			if a.first > snap && groups[a.first] != a {
				t.Fatalf("%s: acknowledged append %+v stored as %+v", id, a, groups[a.first])
			}
		}
	}
}
