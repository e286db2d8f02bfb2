package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/briskhq/brisk/internal/slo"
)

const sloUsage = `usage: brisk slo <command> [flags]

commands:
  rules      write Prometheus recording rules, burn-rate alerts and their
             promtool tests (default into deploy/prometheus)
  dashboard  write the Grafana dashboard (default deploy/grafana/brisk.json)
  check      validate a spec and list its objectives
  status     show the live burn rates and error budgets of a running brisk
             (its /debug/slo)

Run 'brisk slo <command> -h' for its flags.`

func runSLO(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, sloUsage)
		if len(args) == 0 {
			return exitError{code: 2}
		}
		return nil
	}
	cmds := map[string]func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
		"rules": runSLORules, "dashboard": runSLODashboard, "check": runSLOCheck, "status": runSLOStatus,
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintln(stderr, sloUsage)
		return usageError("slo: unknown command %q", args[0])
	}
	return c(ctx, args[1:], getenv, stdout, stderr)
}

// specFlag registers --spec; loadSpec reads it (the built-in spec when empty).
func specFlag(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("spec", "", "SLO spec file (empty: the built-in copy of the repository's slo.yaml)")
}

func loadSpec(path string) (*slo.Spec, error) {
	if path == "" {
		return slo.Default(), nil
	}
	s, err := slo.Load(path)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return s, nil
}

// writeFile writes b to path, creating its directory.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func runSLORules(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("slo rules", "Writes Prometheus recording rules and multiwindow, multi-burn-rate alerts\n"+
		"(rules/slo-<journey>.yml) and their promtool unit tests (tests/slo-<journey>.test.yml)\n"+
		"into --out. Check them with: promtool check rules rules/*.yml && promtool test rules tests/*.yml", stderr)
	spec := specFlag(fs)
	out := fs.String("out", filepath.Join("deploy", "prometheus"), "directory of the Prometheus config")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	s, err := loadSpec(*spec)
	if err != nil {
		return err
	}
	files, err := slo.Files(s)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		path := filepath.Join(*out, n)
		if err := writeFile(path, files[n]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}

func runSLODashboard(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("slo dashboard", "Writes the Grafana dashboard: SLO budgets and burn rates, golden signals per\n"+
		"route, saturation, cache, payment client and breaker.", stderr)
	spec := specFlag(fs)
	out := fs.String("out", filepath.Join("deploy", "grafana", "brisk.json"), "dashboard file")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	s, err := loadSpec(*spec)
	if err != nil {
		return err
	}
	b, err := slo.Dashboard(s)
	if err != nil {
		return err
	}
	if err := writeFile(*out, b); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "wrote", *out)
	return nil
}

func runSLOCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("slo check", "Validates an SLO spec and lists its objectives.", stderr)
	spec := specFlag(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	s, err := loadSpec(*spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d journeys, %d objectives over %s\n", s.Service, len(s.Journeys), len(s.SLOs()), s.Window)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLO\tOBJECTIVE\tTHRESHOLD\tERROR BUDGET")
	for _, o := range s.SLOs() {
		th := "-"
		if o.Threshold > 0 {
			th = o.Threshold.String()
		}
		budget := time.Duration(o.ErrorBudget() * float64(s.Window)).Round(time.Minute)
		fmt.Fprintf(tw, "%s\t%g%%\t%s\t%g%% (%s of %s)\n", o.Name, o.Objective*100, th, o.ErrorBudget()*100, budget, s.Window)
	}
	return tw.Flush()
}

func runSLOStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("slo status", "Shows the live burn rates and error budgets of a running brisk (GET /debug/slo).", stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the brisk API or admin server")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(*url, "/")+"/debug/slo", nil)
	if err != nil {
		return usageError("--url: %v", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get /debug/slo: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("read /debug/slo: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("get /debug/slo: %s", res.Status)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var st slo.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decode /debug/slo: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLO\tOBJECTIVE\tBURN 5m\tBURN 1h\tBURN 6h\tBUDGET LEFT\tFIRING")
	for _, s := range st.SLOs {
		burn := map[string]float64{}
		for _, w := range s.Windows {
			burn[w.Window] = w.BurnRate
		}
		var firing []string
		for _, a := range s.Alerts {
			if a.Firing {
				firing = append(firing, fmt.Sprintf("%s(%s/%s)", a.Severity, a.Long, a.Short))
			}
		}
		if len(firing) == 0 {
			firing = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%g%%\t%.2f\t%.2f\t%.2f\t%.1f%%\t%s\n", s.Name, s.Objective*100, burn["5m"], burn["1h"], burn["6h"],
			s.Budget.Remaining*100, strings.Join(firing, " "))
	}
	return tw.Flush()
}
