package deploytest

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	tmpRoot   string // removed by TestMain
	buildOnce sync.Once
	briskBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploytest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dockerBuildCommand returns the shell command of the Dockerfile's RUN
// instruction that builds brisk (continuation lines joined, --mount
// options dropped).
func dockerBuildCommand(t testing.TB) string {
	t.Helper()
	for _, ins := range dockerInstructions(t) {
		if ins.cmd == "RUN" && strings.Contains(ins.args, "go build") {
			var keep []string
			for _, f := range strings.Fields(ins.args) {
				if !strings.HasPrefix(f, "--mount=") {
					keep = append(keep, f)
				}
			}
			return strings.Join(keep, " ")
		}
	}
	t.Fatal("Dockerfile has no RUN ... go build")
	return ""
}

type instruction struct{ cmd, args string }

// dockerInstructions reads the Dockerfile's instructions, continuation
// lines joined and comments dropped.
func dockerInstructions(t testing.TB) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// brisk returns the brisk binary built by the Dockerfile's own build
// command (same environment and flags), once per test run.
func brisk(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		cmdline := dockerBuildCommand(t)
		out := filepath.Join(tmpRoot, "brisk")
		if !strings.Contains(cmdline, "-o /out/brisk") {
			buildErr = fmt.Errorf("build command %q does not write /out/brisk", cmdline)
			return
		}
		cmd := exec.Command("sh", "-c", strings.Replace(cmdline, "-o /out/brisk", "-o "+out, 1))
		cmd.Dir = repoRoot(t)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", cmd, err, b)
			return
		}
		briskBin = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return briskBin
}

func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t)
	var froms []string
	var user, entrypoint string
	for _, i := range ins {
		switch i.cmd {
		case "FROM":
			froms = append(froms, i.args)
		case "USER":
			user = i.args
		case "ENTRYPOINT":
			entrypoint = i.args
		}
	}
	if len(froms) < 2 {
		t.Errorf("Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "scratch") && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %q: want scratch or distroless/static (no libc, no shell)", final)
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user) {
		t.Errorf("USER %q: want a numeric non-root uid (runAsNonRoot can only verify numbers)", user)
	}
	if !strings.HasPrefix(entrypoint, "[") {
		t.Errorf("ENTRYPOINT %s: want the exec form (signals reach brisk, not a shell)", entrypoint)
	}
	build := dockerBuildCommand(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/brisk"} {
		if !strings.Contains(build, want) {
			t.Errorf("build command %q lacks %s", build, want)
		}
	}

	bin := brisk(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary links %v: not static", libs)
	}
	// -trimpath: no path of this machine is in the binary.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), repoRoot(t)) {
		t.Errorf("binary contains the build directory %s: -trimpath missing", repoRoot(t))
	}
	if out, err := exec.Command(bin, "help").CombinedOutput(); err != nil || !strings.Contains(string(out), "usage: brisk") {
		t.Errorf("brisk help = %v\n%s", err, out)
	}
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "brisk-data", "test-artifacts", "bin"} {
		if !have[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	// Nothing the build embeds may be excluded.
	for _, p := range []string{"api", "internal", "cmd", "go.mod", "go.sum"} {
		if have[p] {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
}

// flagEnv returns the BRISK_* variables `brisk <command>` reads.
func flagEnv(t *testing.T, command string) map[string]bool {
	out, _ := exec.Command(brisk(t), command, "-h").CombinedOutput()
	m := map[string]bool{}
	// Each flag's line: "  -name  [BRISK_NAME]"; the flag's name is kept
	// as "-name".
	for _, v := range regexp.MustCompile(`(?m)^  (-[a-z0-9-]+)  \[(BRISK_[A-Z0-9_]+)\]`).FindAllStringSubmatch(string(out), -1) {
		m[v[1]], m[v[2]] = true, true
	}
	if len(m) == 0 {
		t.Fatalf("brisk %s -h lists no environment variables:\n%s", command, out)
	}
	return m
}

// TestManifestSettingsAreFlags: every BRISK_* variable the manifests set,
// and every --flag their args pass, is read by the command the container
// runs: a renamed flag cannot leave a silently ignored setting behind.
func TestManifestSettingsAreFlags(t *testing.T) {
	root := repoRoot(t)
	flags := map[string]map[string]bool{}
	for _, overlay := range []string{"dev", "prod"} {
		objs := render(t, filepath.Join(root, "deploy", "k8s", overlay))
		for name, p := range podTemplates(objs) {
			for _, c := range p.Spec.Containers {
				if !strings.Contains(c.Image, "brisk") {
					continue
				}
				command := c.Args[0]
				if flags[command] == nil {
					flags[command] = flagEnv(t, command)
				}
				for _, a := range c.Args[1:] {
					if flag, ok := strings.CutPrefix(a, "--"); ok {
						flag, _, _ = strings.Cut(flag, "=")
						if !flags[command]["-"+flag] {
							t.Errorf("%s %s: %s/%s passes --%s, which `brisk %s` does not have", overlay, name, c.Name, command, flag, command)
						}
					}
				}
				for k := range envOf(t, objs, c) {
					if !strings.HasPrefix(k, "BRISK_") {
						continue
					}
					// brisk-config is shared by every brisk container; each
					// reads the variables it has flags for. Those set on
					// the container itself must all be read.
					direct := false
					for _, e := range c.Env {
						direct = direct || e.Name == k
					}
					if (direct || command == "api") && !flags[command][k] {
						t.Errorf("%s %s: %s/%s sets %s, which `brisk %s` does not read", overlay, name, c.Name, command, k, command)
					}
				}
			}
		}
	}
}
