package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/briskhq/brisk/internal/load"
)

// Duration is a time.Duration written in YAML as a Go duration ("2s").
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Experiment is one chaos experiment, as a chaos/*.yaml file describes it.
type Experiment struct {
	Name       string `yaml:"name"`
	Hypothesis string `yaml:"hypothesis"`
	// Instances is how many API instances serve the load behind one
	// balancer; default 2.
	Instances int `yaml:"instances"`
	// Load is the traffic sent through every phase.
	Load LoadSpec `yaml:"load"`
	// SteadyState is the SLO budget (load.ParseBudget syntax) that must
	// hold before the faults and again after them.
	SteadyState string `yaml:"steady_state"`
	// DuringFault is the budget that must hold while the faults are
	// active; empty: none.
	DuringFault string `yaml:"during_fault"`
	// Phases are the lengths of the before, during and after phases.
	Phases Phases `yaml:"phases"`
	// Faults are injected during the "during" phase, each At after it
	// starts, for For (0: until the phase ends).
	Faults []Fault `yaml:"faults"`
	// RecoverWithin bounds the time from the end of the last fault to the
	// first error-free moment; 0: not judged.
	RecoverWithin Duration `yaml:"recover_within"`

	File string `yaml:"-"` // where the experiment was read from
}

// LoadSpec is the load of an experiment (see load.Config).
type LoadSpec struct {
	Scenario string  `yaml:"scenario"` // default shop
	Rate     float64 `yaml:"rate"`     // requests per second
	Users    int     `yaml:"users"`    // default 10
}

// Phases are the lengths of an experiment's three phases.
type Phases struct {
	Before Duration `yaml:"before"`
	During Duration `yaml:"during"`
	After  Duration `yaml:"after"`
}

// Fault targets.
const (
	TargetPostgres = "postgres"
	TargetRedis    = "redis"
	TargetPayment  = "payment"
	TargetAPI      = "api"
)

// Fault kinds. Network kinds apply to postgres, redis and payment (through
// the TCP fault proxy); errors and slow to payment (its simulator); stop
// to payment (the service is stopped, then restarted); kill to api (one
// instance is killed with SIGKILL and stays dead).
const (
	KindLatency   = "latency"   // Latency ± Jitter on every packet
	KindBandwidth = "bandwidth" // RateKB kilobytes per second
	KindReset     = "reset"     // connections reset (share: Toxicity)
	KindTimeout   = "timeout"   // blackhole: data goes nowhere, connections hang
	KindDown      = "down"      // the proxy refuses connections and drops the open ones
	KindErrors    = "errors"    // payment calls answer UNAVAILABLE at Rate (0..1)
	KindSlow      = "slow"      // payment calls take Latency ± Jitter
	KindStop      = "stop"      // the payment service stops, restarts after For
	KindKill      = "kill"      // kill -9 of API instance Instance
)

// Fault is one fault with its timing.
type Fault struct {
	Target string   `yaml:"target"`
	Kind   string   `yaml:"kind"`
	At     Duration `yaml:"at"`
	For    Duration `yaml:"for"`

	Latency  Duration `yaml:"latency"`
	Jitter   Duration `yaml:"jitter"`
	RateKB   int64    `yaml:"rate_kb"`
	Rate     float64  `yaml:"rate"`
	Toxicity float64  `yaml:"toxicity"` // share of connections affected; default 1
	Instance int      `yaml:"instance"` // API instance index for kill
}

func (f Fault) String() string {
	s := f.Target + " " + f.Kind
	switch f.Kind {
	case KindLatency, KindSlow:
		s += fmt.Sprintf(" %v±%v", f.Latency.D(), f.Jitter.D())
	case KindBandwidth:
		s += fmt.Sprintf(" %dKB/s", f.RateKB)
	case KindErrors:
		s += fmt.Sprintf(" %g%%", f.Rate*100)
	case KindKill:
		s += fmt.Sprintf(" #%d", f.Instance)
	}
	if f.Toxicity > 0 && f.Toxicity < 1 {
		s += fmt.Sprintf(" (%g%% of conns)", f.Toxicity*100)
	}
	s += fmt.Sprintf(" at %v", f.At.D())
	if f.For > 0 {
		s += fmt.Sprintf(" for %v", f.For.D())
	}
	return s
}

// Validate reports what is wrong with e, if anything.
func (e Experiment) Validate() error {
	wrap := func(err error) error { return fmt.Errorf("experiment %q: %w", e.Name, err) }
	if e.Name == "" {
		return fmt.Errorf("experiment in %s: no name", e.File)
	}
	if e.Hypothesis == "" {
		return wrap(fmt.Errorf("no hypothesis"))
	}
	if e.Instances < 0 {
		return wrap(fmt.Errorf("instances %d", e.Instances))
	}
	if !(e.Load.Rate > 0) {
		return wrap(fmt.Errorf("load rate %v: want > 0", e.Load.Rate))
	}
	if _, err := load.ParseBudget(e.SteadyState); err != nil || e.SteadyState == "" {
		return wrap(fmt.Errorf("steady state %q: want a budget (%v)", e.SteadyState, err))
	}
	if _, err := load.ParseBudget(e.DuringFault); err != nil {
		return wrap(err)
	}
	if e.Phases.Before <= 0 || e.Phases.During <= 0 || e.Phases.After <= 0 {
		return wrap(fmt.Errorf("phases before, during and after must all be > 0"))
	}
	if len(e.Faults) == 0 {
		return wrap(fmt.Errorf("no faults"))
	}
	for _, f := range e.Faults {
		if err := f.validate(e.instances()); err != nil {
			return wrap(err)
		}
		if f.At.D()+f.For.D() > e.Phases.During.D() {
			return wrap(fmt.Errorf("fault %s ends after the during phase (%v)", f, e.Phases.During.D()))
		}
	}
	return nil
}

func (e Experiment) instances() int {
	if e.Instances == 0 {
		return 2
	}
	return e.Instances
}

func (f Fault) validate(instances int) error {
	network := f.Target == TargetPostgres || f.Target == TargetRedis || f.Target == TargetPayment
	ok := false
	switch f.Kind {
	case KindLatency:
		ok = network && f.Latency > 0
	case KindBandwidth:
		ok = network && f.RateKB > 0
	case KindReset, KindTimeout, KindDown:
		ok = network
	case KindErrors:
		ok = f.Target == TargetPayment && f.Rate > 0 && f.Rate <= 1
	case KindSlow:
		ok = f.Target == TargetPayment && f.Latency > 0
	case KindStop:
		ok = f.Target == TargetPayment
	case KindKill:
		ok = f.Target == TargetAPI && f.Instance >= 0 && f.Instance < instances
	}
	if !ok || f.At < 0 || f.For < 0 || f.Jitter < 0 || f.Toxicity < 0 || f.Toxicity > 1 {
		return fmt.Errorf("bad fault %+v", f)
	}
	return nil
}

// Scaled returns e with every phase and fault time multiplied by s (for
// quick runs); the load's rate is unchanged.
func (e Experiment) Scaled(s float64) Experiment {
	if s == 1 || s <= 0 {
		return e
	}
	sc := func(d Duration) Duration { return Duration(time.Duration(float64(d) * s).Round(time.Millisecond)) }
	e.Phases = Phases{sc(e.Phases.Before), sc(e.Phases.During), sc(e.Phases.After)}
	e.RecoverWithin = Duration(max(time.Duration(float64(e.RecoverWithin)*s), min(e.RecoverWithin.D(), 3*time.Second)))
	e.Faults = append([]Fault(nil), e.Faults...)
	for i := range e.Faults {
		e.Faults[i].At, e.Faults[i].For = sc(e.Faults[i].At), sc(e.Faults[i].For)
	}
	return e
}

// Parse reads one experiment from YAML; unknown fields are errors.
func Parse(data []byte, file string) (Experiment, error) {
	var e Experiment
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&e); err != nil {
		return Experiment{}, fmt.Errorf("parse %s: %w", file, err)
	}
	e.File = file
	if e.Instances == 0 {
		e.Instances = 2
	}
	if e.Load.Users == 0 {
		e.Load.Users = 10
	}
	if e.Load.Scenario == "" {
		e.Load.Scenario = load.ScenarioShop
	}
	if err := e.Validate(); err != nil {
		return Experiment{}, fmt.Errorf("%s: %w", file, err)
	}
	return e, nil
}

// LoadDir reads every *.yaml experiment of dir, sorted by name.
func LoadDir(dir string) ([]Experiment, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("load experiments: %w", err)
	}
	var out []Experiment
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load experiments: %w", err)
		}
		e, err := Parse(data, f)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("load experiments: %q in both %s and %s", e.Name, prev, f)
		}
		seen[e.Name] = f
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load experiments: no *.yaml in %s", dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Select returns the experiments named (all when names is empty), in the
// order named.
func Select(all []Experiment, names []string) ([]Experiment, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Experiment
	for _, n := range names {
		found := false
		for _, e := range all {
			if e.Name == n {
				out, found = append(out, e), true
				break
			}
		}
		if !found {
			var have []string
			for _, e := range all {
				have = append(have, e.Name)
			}
			return nil, fmt.Errorf("no experiment %q (have %s)", n, strings.Join(have, ", "))
		}
	}
	return out, nil
}
