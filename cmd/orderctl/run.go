package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// command is one subcommand of orderctl.
type command struct {
	name    string
	summary string
	// usage is the synopsis, a description and examples, shown by -h.
	usage string
	run   func(ctx context.Context, e *env, args []string) error
}

// env is what every command writes to.
type env struct {
	stdout, stderr io.Writer
}

var commands = []command{backupCmd, restoreCmd, inspectCmd, verifyCmd, clusterCmd}

const toolUsage = `orderctl is the order engine's admin tool.

Usage:
  orderctl COMMAND [flags]

Commands:
%s
Run "orderctl COMMAND -h" for a command's flags and examples.
`

// run is orderctl: it runs the command that args name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		var list strings.Builder
		for _, c := range commands {
			fmt.Fprintf(&list, "  %-8s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(stderr, toolUsage, list.String())
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return flag.ErrHelp
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return fmt.Errorf("unknown command %q; run orderctl -h for the list", args[0])
}

// flags returns a flag set for a command that prints usage on -h.
func (e *env) flags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("orderctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "%s\n\nFlags:\n", strings.TrimSpace(usage))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and refuses positional arguments beyond maxArgs.
func parse(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > maxArgs {
		return fmt.Errorf("%s: unexpected argument %q (flags go before arguments)", fs.Name(), fs.Arg(maxArgs))
	}
	return nil
}

// journalDir returns the journal directory of an orderd data directory.
func journalDir(dataDir string) string { return filepath.Join(dataDir, "journal") }

// existingJournal returns the journal of dataDir, refusing a directory
// that has none.
func existingJournal(dataDir string) (string, error) {
	j := journalDir(dataDir)
	if _, err := os.Stat(filepath.Join(j, "MANIFEST")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s is not an orderd data directory (it has no journal/); give the directory orderd runs with -data", dataDir)
		}
		return "", err
	}
	return j, nil
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
