package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// memberlistLog turns memberlist's log lines ("[WARN] memberlist: ...")
// into slog records at the level they name.
type memberlistLog struct{ log *slog.Logger }

func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(memberlistLog{l}, "", 0)
}

var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG] ", slog.LevelDebug},
	{"[INFO] ", slog.LevelInfo},
	{"[WARN] ", slog.LevelWarn},
	{"[ERR] ", slog.LevelError},
	{"[ERROR] ", slog.LevelError},
}

func (w memberlistLog) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range memberlistLevels {
		if rest, ok := bytes.CutPrefix(line, []byte(l.prefix)); ok {
			line, level = rest, l.level
			break
		}
	}
	if w.log.Enabled(context.Background(), level) {
		w.log.Log(context.Background(), level, "memberlist", "line", string(line))
	}
	return len(p), nil
}
