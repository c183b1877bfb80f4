package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Consumer limits: how many events one read takes, and how long it blocks
// waiting for new ones (so shutdown is noticed within that time).
const (
	consumerGroup      = "persist"
	consumerBatchMax   = 1024
	consumerBlockMax   = 500 * time.Millisecond
	consumerRetryPause = 200 * time.Millisecond
)

// consumer persists the order stream: it reads events in batches as one
// member of a consumer group, appends them to a file as JSON lines, fsyncs,
// and only then acknowledges and deletes them, so an event is either in the
// file or still in the stream.
type consumer struct {
	rdb *redis.Client
	out *os.File
	log *slog.Logger
}

func (c *consumer) init(ctx context.Context) error {
	err := c.rdb.XGroupCreateMkStream(ctx, streamKey, consumerGroup, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group: %w", err)
	}
	return nil
}

func (c *consumer) run(ctx context.Context) error {
	w := bufio.NewWriterSize(c.out, 1<<20)
	for ctx.Err() == nil {
		streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: consumerGroup, Consumer: "c1", Streams: []string{streamKey, ">"},
			Count: consumerBatchMax, Block: consumerBlockMax,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("read order stream", "err", err)
			time.Sleep(consumerRetryPause)
			continue
		}
		for _, s := range streams {
			if err := c.persist(ctx, w, s.Messages); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *consumer) persist(ctx context.Context, w *bufio.Writer, msgs []redis.XMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
		fmt.Fprintf(w, "{\"stream_id\":%q,\"event\":%q", m.ID, m.Values["event"])
		if doc, ok := m.Values["doc"].(string); ok {
			fmt.Fprintf(w, ",\"order\":%s}\n", doc)
		} else {
			fmt.Fprintf(w, ",\"id\":%q,\"ref\":%q}\n", m.Values["id"], m.Values["ref"])
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write orders file: %w", err)
	}
	if err := c.out.Sync(); err != nil {
		return fmt.Errorf("sync orders file: %w", err)
	}
	// Acknowledge with a context that outlives shutdown: the batch is on disk.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	pipe := c.rdb.Pipeline()
	pipe.XAck(actx, streamKey, consumerGroup, ids...)
	pipe.XDel(actx, streamKey, ids...)
	if _, err := pipe.Exec(actx); err != nil {
		return fmt.Errorf("ack order events: %w", err)
	}
	return nil
}
