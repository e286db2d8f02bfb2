package slo

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite deploy/prometheus and deploy/grafana from slo.yaml")

const (
	promDir       = "../../deploy/prometheus"
	dashboardFile = "../../deploy/grafana/brisk.json"
)

// TestGeneratedFilesUpToDate fails when the committed rules, rule tests or
// dashboard differ from what slo.yaml generates (refresh with -update or
// `brisk slo rules && brisk slo dashboard`).
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files(Default())
	if err != nil {
		t.Fatal(err)
	}
	dash, err := Dashboard(Default())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{dashboardFile: dash}
	for p, b := range files {
		want[filepath.Join(promDir, p)] = b
	}
	for path, b := range want {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run go test ./internal/slo -update)", err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s is stale: run go test ./internal/slo -update", path)
		}
	}
}

// promtool returns the path of promtool (Debian package prometheus); in CI
// its absence fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: apt-get install -y prometheus")
		}
		t.Skip("promtool not found: apt-get install -y prometheus")
	}
	return p
}

// writeFiles writes the generated Prometheus files into a temporary dir.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range files {
		path := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sortedKeys(m map[string][]byte, prefix string) []string {
	var ks []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// runPromtool runs `promtool args... file` for each file, in parallel,
// and returns the combined output and whether all succeeded.
func runPromtool(t *testing.T, dir string, files []string, args ...string) (string, bool) {
	t.Helper()
	bin := promtool(t)
	var (
		mu  sync.Mutex
		out strings.Builder
		ok  = true
		wg  sync.WaitGroup
	)
	for _, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, append(args, f)...)
			cmd.Dir = dir
			b, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			out.Write(b)
			if err != nil {
				ok = false
			}
		}()
	}
	wg.Wait()
	return out.String(), ok
}

// TestRulesPromtool checks the generated rules with promtool and runs
// their unit tests: a burn just above 14.4x pages, 14x and 1x do not,
// low traffic does not, and the page ends when errors stop.
func TestRulesPromtool(t *testing.T) {
	t.Parallel()
	files, err := Files(Default())
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, files)
	if out, ok := runPromtool(t, dir, sortedKeys(files, "rules/"), "check", "rules"); !ok {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	if testing.Short() {
		t.Skip("promtool test rules takes seconds")
	}
	if out, ok := runPromtool(t, dir, sortedKeys(files, "tests/"), "test", "rules"); !ok {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

// TestRuleTestsCatchWrongThresholds shows the promtool tests bite: with
// the page threshold of the 1h/5m pair moved from 14.4x to 14.6x, or the
// low-traffic guard dropped, they fail.
func TestRuleTestsCatchWrongThresholds(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("promtool test rules takes seconds")
	}
	s := Default()
	files, err := Files(s)
	if err != nil {
		t.Fatal(err)
	}
	const rules, tests = "rules/slo-checkout.yml", "tests/slo-checkout.test.yml"
	mutations := []struct {
		name, old, new, want string
	}{
		{"page at 14.6x", "> 0.0144\n", "> 0.0146\n", "a 14.4x burn for an hour pages"},
		{"no low-traffic guard", " >= 100\n", " >= 0\n", "low traffic does not page"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			mutated := map[string][]byte{tests: files[tests]}
			r := string(files[rules])
			if !strings.Contains(r, m.old) {
				t.Fatalf("%s has no %q", rules, m.old)
			}
			mutated[rules] = []byte(strings.ReplaceAll(r, m.old, m.new))
			dir := writeFiles(t, mutated)
			out, ok := runPromtool(t, dir, []string{tests}, "test", "rules")
			if ok {
				t.Fatalf("promtool test rules passed with the %s mutation:\n%s", m.name, out)
			}
			if !strings.Contains(out, m.want) {
				t.Errorf("promtool output does not name the test %q:\n%s", m.want, out)
			}
		})
	}
}
