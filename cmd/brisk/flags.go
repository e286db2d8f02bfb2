package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// newFlagSet returns a FlagSet for a subcommand whose usage text goes to
// w; its flags are backed by BRISK_* environment variables.
func newFlagSet(name, summary string, w io.Writer) *flag.FlagSet {
	return newFlagSetEnv(name, summary, w, "BRISK_")
}

// newFlagSetEnv is newFlagSet with another environment prefix
// (BRISK_LOAD_ for brisk load, whose flags would clash with the API's).
func newFlagSetEnv(name, summary string, w io.Writer, prefix string) *flag.FlagSet {
	fs := flag.NewFlagSet("brisk "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: brisk %s [flags]\n\n%s\n\nflags (each also read from the environment variable shown):\n", name, summary)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && !isSecret(f.Name) {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  -%s  [%s]\n    \t%s%s\n", f.Name, envName(prefix, f.Name), f.Usage, def)
		})
	}
	return fs
}

// envName is the environment variable that backs a flag:
// ("BRISK_", "payment-addr") -> BRISK_PAYMENT_ADDR.
func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its BRISK_* environment variable. -h prints usage and returns
// errHelp, which the caller turns into a clean exit.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	return parseFlagsEnv(fs, args, getenv, "BRISK_")
}

// parseFlagsEnv is parseFlags with another environment prefix.
func parseFlagsEnv(fs *flag.FlagSet, args []string, getenv func(string) string, prefix string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := getenv(envName(prefix, f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError("%s=%q: %v", envName(prefix, f.Name), v, e)
			}
		}
	})
	return err
}

// parseAndLog parses a server command's flags, builds its logger at
// *level and logs the effective configuration (secrets masked).
func parseAndLog(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer, level *string) (*slog.Logger, error) {
	if err := parseFlags(fs, args, getenv); err != nil {
		return nil, err
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return nil, err
	}
	logConfig(log, fs)
	return log, nil
}

// errHelp reports that -h was given; run treats it as success.
var errHelp = exitError{code: 0}

// isSecret reports whether a flag holds a secret whose value is never logged.
func isSecret(name string) bool {
	return strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.HasSuffix(name, "token")
}

// logConfig logs the effective value of every flag, with secrets masked
// (passwords in DSNs included).
func logConfig(log *slog.Logger, fs *flag.FlagSet) {
	var attrs []any
	fs.VisitAll(func(f *flag.Flag) {
		attrs = append(attrs, slog.String(f.Name, maskValue(f.Name, f.Value.String())))
	})
	log.Info("effective config", slog.Group("config", attrs...))
}

func maskValue(name, v string) string {
	if v == "" {
		return ""
	}
	if isSecret(name) {
		return "*****"
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return v
}
