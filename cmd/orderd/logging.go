package main

import (
	"context"
	"log/slog"
	"strings"
)

// deadLettersAtDebug lowers protoactor's dead-letter records to debug. A
// message that reaches an actor which just passivated, or one still in
// flight while the node stops, is routine here: every command is retried
// or answered by its caller's own timeout. At info level they buried the
// lines that matter during a shutdown.
type deadLettersAtDebug struct{ slog.Handler }

func (h deadLettersAtDebug) Enabled(ctx context.Context, level slog.Level) bool {
	// The record's message is not known yet; Handle decides.
	return h.Handler.Enabled(ctx, level) || h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h deadLettersAtDebug) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "[DeadLetter]") && r.Level > slog.LevelDebug {
		r.Level = slog.LevelDebug
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h deadLettersAtDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return deadLettersAtDebug{h.Handler.WithAttrs(attrs)}
}

func (h deadLettersAtDebug) WithGroup(name string) slog.Handler {
	return deadLettersAtDebug{h.Handler.WithGroup(name)}
}
