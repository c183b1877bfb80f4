package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderengine/orderengine/inspect"
)

// tableFlushRows is how many rows a table buffers to align its columns.
const tableFlushRows = 1000

const inspectUsage = `Usage:
  orderctl inspect -data DIR | -i FILE [-json] [-kind sku|order]
  orderctl inspect -data DIR | -i FILE [-json] sku ID | order ID

Without an identity, lists every SKU (stock, limit, records) and every order
(status, customer, lines) with their state as a node starting on the data
would rebuild it: a table for people, or one JSON object per line with -json.
With "sku ID" or "order ID", shows that actor's state, its latest snapshot
and the events after it (and a SKU's records of orders). The data directory
must not be in use by a running orderd; inspect a backup of a running one.

Examples:
  orderctl inspect -data ./data
  orderctl inspect -data ./data -kind order -json | jq 'select(.order.status == "paid")'
  orderctl inspect -i full.backup sku A-1
  orderctl inspect -data ./data -json order o_01JDQ3S5M4V6X8Z0B2D4F6H8JK
`

var inspectCmd = command{
	name:    "inspect",
	summary: "list the SKUs and orders of a data directory or backup, or show one",
	usage:   inspectUsage,
	run:     runInspect,
}

func runInspect(_ context.Context, e *env, args []string) (err error) {
	fs := e.flags("inspect", inspectUsage)
	data := fs.String("data", "", "data directory of a stopped node")
	var backups stringList
	fs.Var(&backups, "i", "a backup file instead of -data; repeat for incrementals")
	asJSON := fs.Bool("json", false, "JSON output (one object per line for a listing)")
	kind := fs.String("kind", "", "list only SKUs (sku) or orders (order)")
	if err := parse(fs, args, 2); err != nil {
		return err
	}
	if fs.NArg() == 1 {
		return errors.New("inspect: give the kind and the ID: sku ID or order ID")
	}
	if *kind != "" && *kind != string(inspect.KindSKU) && *kind != string(inspect.KindOrder) {
		return fmt.Errorf("inspect: -kind %q: want sku or order", *kind)
	}
	src, closeSrc, err := openSource(e, *data, backups)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	defer closeWith(&err, closeSrc)
	out := bufio.NewWriter(e.stdout)
	defer func() { err = errors.Join(err, out.Flush()) }()
	if fs.NArg() == 2 {
		k := inspect.Kind(fs.Arg(0))
		if k != inspect.KindSKU && k != inspect.KindOrder {
			return fmt.Errorf("inspect: %q: want sku ID or order ID", fs.Arg(0))
		}
		d, err := inspect.Show(src, k, fs.Arg(1))
		if err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		if *asJSON {
			return writeJSON(out, d, "  ")
		}
		return writeDetail(out, d)
	}
	if *asJSON {
		return inspect.List(src, func(a inspect.Actor) error {
			if *kind != "" && string(a.Kind) != *kind {
				return nil
			}
			return writeJSON(out, a, "")
		})
	}
	for _, k := range []inspect.Kind{inspect.KindSKU, inspect.KindOrder} {
		if *kind == "" || string(k) == *kind {
			if err := writeTable(out, src, k); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any, indent string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", indent)
	return enc.Encode(v)
}

// writeTable lists one kind of actor as a table, and actors that could
// not be rebuilt with their error.
func writeTable(w io.Writer, src inspect.Source, kind inspect.Kind) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "SKU\tAVAILABLE\tRESERVED\tSOLD\tRESTOCKED\tREMOVED\tLIMIT\tRECORDS\tPARTITION"
	if kind == inspect.KindOrder {
		header = "ORDER\tSTATUS\tCUSTOMER\tITEMS\tCREATED\tEXPIRES\tPAYMENT\tPARTITION"
	}
	fmt.Fprintln(tw, header)
	rows := 0
	err := inspect.List(src, func(a inspect.Actor) error {
		if a.Kind != kind && !(kind == inspect.KindSKU && a.Kind == inspect.KindUnknown) {
			return nil
		}
		switch {
		case a.Error != "":
			fmt.Fprintf(tw, "%s\tERROR: %s\n", a.ID, a.Error)
		case a.SKU != nil:
			s := a.SKU
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", a.ID, s.Available, s.Reserved, s.Sold,
				s.Restocked, s.Removed, s.PerCustomerLimit, s.Holds, a.Partition)
		case a.Order != nil:
			o := a.Order
			items := make([]string, len(o.Items))
			for i, it := range o.Items {
				items[i] = fmt.Sprintf("%s×%d", it.SKU, it.Quantity)
			}
			pay := o.PaymentRef
			if pay == "" {
				pay = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", a.ID, o.Status, o.Customer, strings.Join(items, ","),
				o.CreatedAt.Format(time.RFC3339), o.ExpiresAt.Format(time.RFC3339), pay, a.Partition)
		}
		if rows++; rows%tableFlushRows == 0 {
			return tw.Flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w)
	return err
}

func writeDetail(w io.Writer, d *inspect.Detail) error {
	fmt.Fprintf(w, "%s %s (partition %d), sequence %d, snapshot at %d\n", d.Kind, d.ID, d.Partition, d.Sequence, d.Snapshot)
	if d.Wake != nil {
		fmt.Fprintf(w, "wakes at %s\n", d.Wake.Format(time.RFC3339Nano))
	}
	if d.Error != "" {
		fmt.Fprintf(w, "ERROR: %s\n", d.Error)
	}
	state := any(d.SKU)
	if d.Order != nil {
		state = d.Order
	}
	if state != nil {
		fmt.Fprint(w, "state: ")
		if err := writeJSON(w, state, ""); err != nil {
			return err
		}
	}
	if d.SnapshotState != nil {
		fmt.Fprintf(w, "snapshot: %s\n", d.SnapshotState)
	}
	fmt.Fprintf(w, "events after the snapshot: %d\n", len(d.Events))
	for _, ev := range d.Events {
		fmt.Fprintf(w, "  #%d %s\n", ev.Sequence, ev.Event)
	}
	if len(d.Holds) > 0 {
		fmt.Fprintf(w, "records of orders: %d\n", len(d.Holds))
		for _, h := range d.Holds {
			fmt.Fprintf(w, "  %s\n", h)
		}
	}
	return nil
}
