package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/briskhq/brisk/internal/slo"
)

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// object is one rendered, strictly decoded Kubernetes object.
type object struct {
	kind, name string
	obj        any // pointer to the k8s.io/api type
}

// newObject returns a pointer to the API type of apiVersion/kind.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	}
	return nil, false
}

// render builds a kustomization with the kustomize library (offline) and
// decodes every object strictly: an unknown or misspelt field, a wrong
// type or an unparsable quantity fails.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(y, &meta); err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		obj, ok := newObject(meta.APIVersion, meta.Kind)
		if !ok {
			t.Errorf("%s: no Go type known for %s %s", dir, meta.APIVersion, meta.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", dir, meta.Kind, r.GetName(), err)
			continue
		}
		objs = append(objs, object{kind: meta.Kind, name: r.GetName(), obj: obj})
	}
	return objs
}

func find[T any](objs []object, name string) *T {
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok && (name == "" || o.name == name) {
			return v
		}
	}
	return nil
}

func all[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// podTemplates returns every pod template of the workloads, by workload name.
func podTemplates(objs []object) map[string]*corev1.PodTemplateSpec {
	m := map[string]*corev1.PodTemplateSpec{}
	for _, d := range all[appsv1.Deployment](objs) {
		m["Deployment/"+d.Name] = &d.Spec.Template
	}
	for _, s := range all[appsv1.StatefulSet](objs) {
		m["StatefulSet/"+s.Name] = &s.Spec.Template
	}
	for _, j := range all[batchv1.Job](objs) {
		m["Job/"+j.Name] = &j.Spec.Template
	}
	return m
}

// externalSecrets are created out of band in production (prod/README.md).
var externalSecrets = map[string][]string{
	"prod": {"brisk-secrets", "brisk-jwt-keys"},
}

func TestKustomizeOverlays(t *testing.T) {
	root := repoRoot(t)
	for _, overlay := range []string{"dev", "prod"} {
		t.Run(overlay, func(t *testing.T) {
			objs := render(t, filepath.Join(root, "deploy", "k8s", overlay))
			if len(objs) < 10 {
				t.Fatalf("rendered %d objects, want the whole system", len(objs))
			}
			checkNamespaces(t, objs)
			checkAPI(t, objs)
			checkHPA(t, objs)
			checkPayment(t, objs)
			checkSelectors(t, objs)
			checkPods(t, overlay, objs)
			checkReferences(t, objs, externalSecrets[overlay])
			checkImages(t, overlay, objs)
		})
	}
}

func checkNamespaces(t *testing.T, objs []object) {
	ns := find[corev1.Namespace](objs, "")
	if ns == nil {
		t.Fatal("no Namespace")
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s does not enforce the restricted pod security standard", ns.Name)
	}
	for _, o := range objs {
		var m struct {
			Metadata struct{ Namespace string } `json:"metadata"`
		}
		b, _ := yaml.Marshal(o.obj)
		yaml.Unmarshal(b, &m)
		if o.kind != "Namespace" && m.Metadata.Namespace != ns.Name {
			t.Errorf("%s %s in namespace %q, want %q", o.kind, o.name, m.Metadata.Namespace, ns.Name)
		}
	}
}

func checkAPI(t *testing.T, objs []object) {
	d := find[appsv1.Deployment](objs, "brisk-api")
	if d == nil {
		t.Fatal("no brisk-api Deployment")
	}
	if d.Spec.Replicas != nil {
		t.Errorf("brisk-api sets replicas %d: the HPA owns the count, an apply would reset it", *d.Spec.Replicas)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("brisk-api rolling update may take pods away before new ones are ready: %+v", d.Spec.Strategy)
	}
	ps := d.Spec.Template.Spec
	if len(ps.Containers) != 1 {
		t.Fatalf("brisk-api has %d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("brisk-api %s probe = %+v, want HTTP GET %s", name, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	if c.StartupProbe != nil && c.StartupProbe.FailureThreshold*c.StartupProbe.PeriodSeconds < 30 {
		t.Errorf("startup probe allows only %ds to start", c.StartupProbe.FailureThreshold*c.StartupProbe.PeriodSeconds)
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatalf("brisk-api has no preStop sleep (the image has no shell for exec)")
	}
	// The grace period must cover preStop + drain delay + shutdown timeout.
	env := envOf(t, objs, c)
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + duration(t, env["BRISK_DRAIN_DELAY"]) + duration(t, env["BRISK_SHUTDOWN_TIMEOUT"])
	if grace := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %v <= preStop + drain + shutdown %v: in-flight requests would be killed", grace, need)
	}
	if env["BRISK_DRAIN_DELAY"] == "" || duration(t, env["BRISK_DRAIN_DELAY"]) <= 0 {
		t.Errorf("BRISK_DRAIN_DELAY unset: /readyz must fail for a while before the listener closes")
	}
	for _, k := range []string{"BRISK_DB", "BRISK_REDIS", "BRISK_JWT_KEYS", "BRISK_PAYMENT_ADDR"} {
		if _, ok := env[k]; !ok {
			t.Errorf("brisk-api does not set %s", k)
		}
	}
	if !strings.HasPrefix(env["BRISK_PAYMENT_ADDR"], "dns:///brisk-payment:") {
		t.Errorf("BRISK_PAYMENT_ADDR = %q, want the headless Service through gRPC's DNS resolver", env["BRISK_PAYMENT_ADDR"])
	}
	// The key file path must be inside a mounted volume.
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || strings.HasPrefix(env["BRISK_JWT_KEYS"], m.MountPath+"/")
	}
	if !mounted {
		t.Errorf("BRISK_JWT_KEYS %q is not in a mounted volume", env["BRISK_JWT_KEYS"])
	}

	pdb := find[policyv1.PodDisruptionBudget](objs, "brisk-api")
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget for brisk-api")
	}
	sel, err := metaSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("brisk-api PDB selector %v does not select the API pods (%v)", pdb.Spec.Selector, err)
	}
}

// envOf returns a container's environment: its env entries (secret refs as
// "secret:NAME/KEY") over the ConfigMaps it loads.
func envOf(t *testing.T, objs []object, c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm := find[corev1.ConfigMap](objs, ef.ConfigMapRef.Name)
		if cm == nil {
			t.Fatalf("container %s loads missing ConfigMap %s", c.Name, ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

func duration(t *testing.T, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Errorf("duration %q: %v", s, err)
	}
	return d
}

func checkHPA(t *testing.T, objs []object) {
	h := find[autoscalingv2.HorizontalPodAutoscaler](objs, "brisk-api")
	if h == nil {
		t.Fatal("no HorizontalPodAutoscaler brisk-api")
	}
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || find[appsv1.Deployment](objs, ref.Name) == nil {
		t.Errorf("HPA targets %+v, not a rendered Deployment", ref)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d: want at least 2 (one can be drained) and max >= min", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	var latency, cpu bool
	for _, m := range h.Spec.Metrics {
		switch {
		case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil:
			latency = m.Pods.Metric.Name == hpaLatencyMetric && m.Pods.Target.Type == autoscalingv2.AverageValueMetricType &&
				m.Pods.Target.AverageValue != nil && m.Pods.Target.AverageValue.AsApproximateFloat64() > 0 &&
				m.Pods.Target.AverageValue.AsApproximateFloat64() < browseThreshold(t).Seconds()
		case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil:
			cpu = m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil
		}
	}
	if !latency {
		t.Errorf("HPA has no Pods metric %s with an average value target below the browse SLO threshold", hpaLatencyMetric)
	}
	if !cpu {
		t.Errorf("HPA has no CPU utilization metric")
	}
	b := h.Spec.Behavior
	if b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds < 120 {
		t.Errorf("HPA scale-down stabilization window missing or under 120s: flapping")
	}
	if b != nil && b.ScaleUp != nil && b.ScaleUp.StabilizationWindowSeconds != nil && *b.ScaleUp.StabilizationWindowSeconds > 60 {
		t.Errorf("HPA scale-up waits %ds: a traffic spike needs capacity now", *b.ScaleUp.StabilizationWindowSeconds)
	}
}

// hpaLatencyMetric is the custom metric the HPA scales on; the adapter's
// rules must produce it.
const hpaLatencyMetric = "brisk_http_request_duration_seconds_p95"

// browseThreshold is the latency threshold of the browse journey's SLO.
func browseThreshold(t *testing.T) time.Duration {
	for _, j := range slo.Default().Journeys {
		if j.Name == "browse" {
			return time.Duration(j.Latency.Threshold)
		}
	}
	t.Fatal("no browse journey in the default SLO spec")
	return 0
}

func checkPayment(t *testing.T, objs []object) {
	s := find[corev1.Service](objs, "brisk-payment")
	if s == nil {
		t.Fatal("no brisk-payment Service")
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("brisk-payment Service is not headless: gRPC would pin each API pod's connection to one payment pod")
	}
	d := find[appsv1.Deployment](objs, "brisk-payment")
	if d == nil {
		t.Fatal("no brisk-payment Deployment")
	}
	if c := d.Spec.Template.Spec.Containers[0]; c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil {
		t.Errorf("brisk-payment readiness probe is not the gRPC health check")
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas > 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("brisk-payment keeps its payments in one SQLite file: want 1 replica and the Recreate strategy, got %v %s", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if find[policyv1.PodDisruptionBudget](objs, "brisk-payment") == nil {
		t.Errorf("no PodDisruptionBudget for brisk-payment")
	}
}

// checkSelectors: every Service, PDB and NetworkPolicy selects some pods,
// and a Service's target ports are named ports of those pods.
func checkSelectors(t *testing.T, objs []object) {
	pods := podTemplates(objs)
	matching := func(sel labels.Selector) []*corev1.PodTemplateSpec {
		var out []*corev1.PodTemplateSpec
		for _, p := range pods {
			if sel.Matches(labels.Set(p.Labels)) {
				out = append(out, p)
			}
		}
		return out
	}
	for _, s := range all[corev1.Service](objs) {
		ps := matching(labels.SelectorFromSet(s.Spec.Selector))
		if len(s.Spec.Selector) == 0 || len(ps) == 0 {
			t.Errorf("Service %s selects no pods", s.Name)
			continue
		}
		for _, port := range s.Spec.Ports {
			if port.TargetPort.StrVal == "" {
				continue
			}
			found := false
			for _, p := range ps {
				for _, c := range p.Spec.Containers {
					for _, cp := range c.Ports {
						found = found || cp.Name == port.TargetPort.StrVal
					}
				}
			}
			if !found {
				t.Errorf("Service %s targets port %q that its pods do not name", s.Name, port.TargetPort.StrVal)
			}
		}
	}
	for _, p := range all[policyv1.PodDisruptionBudget](objs) {
		sel, err := metaSelector(p.Spec.Selector)
		if err != nil || len(matching(sel)) == 0 {
			t.Errorf("PodDisruptionBudget %s selects no pods (%v)", p.Name, err)
		}
	}
	for _, n := range all[networkingv1.NetworkPolicy](objs) {
		sel, err := metaSelector(&n.Spec.PodSelector)
		if err != nil || len(matching(sel)) == 0 {
			t.Errorf("NetworkPolicy %s selects no pods (%v)", n.Name, err)
		}
	}
	for _, s := range all[appsv1.StatefulSet](objs) {
		if svc := find[corev1.Service](objs, s.Spec.ServiceName); svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s has no headless governing Service %q", s.Name, s.Spec.ServiceName)
		}
	}
}

// checkPods: every container has requests and limits, runs as non-root
// without privilege escalation, and brisk's own have a read-only root.
func checkPods(t *testing.T, overlay string, objs []object) {
	for name, p := range podTemplates(objs) {
		ps := p.Spec
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod does not require a non-root user", name)
		}
		if ps.SecurityContext == nil || ps.SecurityContext.SeccompProfile == nil {
			t.Errorf("%s: no seccomp profile (restricted pod security)", name)
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token it does not need", name)
		}
		for _, c := range ps.Containers {
			r := c.Resources
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := r.Requests[res]; !ok {
					t.Errorf("%s/%s: no %s request", name, c.Name, res)
				}
				if _, ok := r.Limits[res]; !ok {
					t.Errorf("%s/%s: no %s limit", name, c.Name, res)
				}
				if req, lim := r.Requests[res], r.Limits[res]; req.Cmp(lim) > 0 {
					t.Errorf("%s/%s: %s request above its limit", name, c.Name, res)
				}
			}
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s/%s: privilege escalation allowed or capabilities kept", name, c.Name)
			}
			if strings.Contains(c.Image, "brisk") && (sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem) {
				t.Errorf("%s/%s: brisk container without a read-only root filesystem", name, c.Name)
			}
			if strings.Contains(c.Image, "brisk") {
				if len(c.Args) == 0 || !slices.Contains([]string{"api", "payment", "migrate", "seed"}, c.Args[0]) {
					t.Errorf("%s/%s: args %v do not start with a brisk command", name, c.Name, c.Args)
				}
			}
		}
	}
}

// checkReferences: every ConfigMap, Secret and PVC a pod uses is rendered
// (kustomize rewrote generated names with their hashes), except the
// secrets an overlay documents as created out of band.
func checkReferences(t *testing.T, objs []object, external []string) {
	has := func(kind, name string) bool {
		switch kind {
		case "ConfigMap":
			return find[corev1.ConfigMap](objs, name) != nil
		case "Secret":
			return find[corev1.Secret](objs, name) != nil || slices.Contains(external, name)
		case "PersistentVolumeClaim":
			return find[corev1.PersistentVolumeClaim](objs, name) != nil
		case "ServiceAccount":
			return name == "" || name == "default" || find[corev1.ServiceAccount](objs, name) != nil
		}
		return false
	}
	for name, p := range podTemplates(objs) {
		ref := func(kind, n string) {
			if !has(kind, n) {
				t.Errorf("%s uses %s %q, which is not rendered", name, kind, n)
			}
		}
		ref("ServiceAccount", p.Spec.ServiceAccountName)
		for _, v := range p.Spec.Volumes {
			switch {
			case v.Secret != nil:
				ref("Secret", v.Secret.SecretName)
			case v.ConfigMap != nil:
				ref("ConfigMap", v.ConfigMap.Name)
			case v.PersistentVolumeClaim != nil:
				ref("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
			}
		}
		for _, c := range p.Spec.Containers {
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					ref("ConfigMap", ef.ConfigMapRef.Name)
				}
				if ef.SecretRef != nil {
					ref("Secret", ef.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					sr := e.ValueFrom.SecretKeyRef
					ref("Secret", sr.Name)
					if s := find[corev1.Secret](objs, sr.Name); s != nil {
						if _, ok := s.Data[sr.Key]; !ok {
							t.Errorf("%s: Secret %s has no key %s", name, sr.Name, sr.Key)
						}
					}
				}
			}
		}
	}
}

func checkImages(t *testing.T, overlay string, objs []object) {
	for name, p := range podTemplates(objs) {
		for _, c := range p.Spec.Containers {
			if c.Image == "brisk" || strings.HasSuffix(c.Image, ":latest") || !strings.ContainsAny(c.Image, ":@") {
				t.Errorf("%s/%s: image %q is not pinned", name, c.Name, c.Image)
			}
			if overlay == "prod" && strings.HasSuffix(c.Image, ":dev") {
				t.Errorf("%s/%s: production runs a dev image %q", name, c.Name, c.Image)
			}
		}
	}
}

func metaSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, fmt.Errorf("no selector")
	}
	return metav1.LabelSelectorAsSelector(s)
}

// adapterConfig mirrors prometheus-adapter's rule file (pkg/config) so that
// it is decoded strictly: a misspelt field fails.
type adapterConfig struct {
	Rules []adapterRule `json:"rules"`
}

type adapterRule struct {
	SeriesQuery   string `json:"seriesQuery"`
	SeriesFilters []struct {
		Is    string `json:"is,omitempty"`
		IsNot string `json:"isNot,omitempty"`
	} `json:"seriesFilters,omitempty"`
	Resources struct {
		Overrides map[string]struct {
			Group    string `json:"group,omitempty"`
			Resource string `json:"resource"`
		} `json:"overrides,omitempty"`
		Template string `json:"template,omitempty"`
	} `json:"resources"`
	Name struct {
		Matches string `json:"matches"`
		As      string `json:"as"`
	} `json:"name"`
	MetricsQuery string `json:"metricsQuery"`
}

func TestPrometheusAdapterRules(t *testing.T) {
	objs := render(t, filepath.Join(repoRoot(t), "deploy", "k8s", "prometheus-adapter"))
	cm := find[corev1.ConfigMap](objs, "prometheus-adapter-rules")
	if cm == nil {
		t.Fatal("no ConfigMap prometheus-adapter-rules")
	}
	var cfg adapterConfig
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("adapter config: %v", err)
	}
	var queries []string
	var names []string
	for _, r := range cfg.Rules {
		// The series the rule discovers is one brisk exports.
		series := strings.SplitN(r.SeriesQuery, "{", 2)[0]
		if series != slo.MetricDuration+"_bucket" && series != slo.MetricRequests {
			t.Errorf("rule series %q is not a brisk metric", series)
		}
		re, err := regexp.Compile(r.Name.Matches)
		if err != nil {
			t.Fatalf("name.matches %q: %v", r.Name.Matches, err)
		}
		name := re.ReplaceAllString(series, r.Name.As)
		names = append(names, name)
		for label := range r.Resources.Overrides {
			if label != "namespace" && label != "pod" {
				t.Errorf("rule %s maps label %q, which scraped pods do not carry", name, label)
			}
		}
		tmpl, err := template.New(name).Delims("<<", ">>").Parse(r.MetricsQuery)
		if err != nil {
			t.Fatalf("metricsQuery of %s: %v", name, err)
		}
		var q bytes.Buffer
		err = tmpl.Execute(&q, map[string]any{
			"Series": series, "LabelMatchers": `namespace="brisk",pod=~"brisk-api-.*"`, "GroupBy": "pod",
			"GroupBySlice": []string{"pod"},
		})
		if err != nil {
			t.Fatalf("metricsQuery of %s: %v", name, err)
		}
		queries = append(queries, fmt.Sprintf("    - record: %s\n      expr: %q\n", strings.ReplaceAll(name, "-", "_"), q.String()))
		if name == hpaLatencyMetric {
			for _, label := range []string{slo.LabelJourney, slo.LabelStatusClass} {
				if !strings.Contains(r.MetricsQuery, label) {
					t.Errorf("%s query does not filter on brisk's %q label", name, label)
				}
			}
		}
	}
	if !slices.Contains(names, hpaLatencyMetric) {
		t.Fatalf("adapter rules produce %v, not the HPA's %s", names, hpaLatencyMetric)
	}
	checkPromQL(t, queries)
}

// checkPromQL has promtool parse the expanded queries, and checks that the
// p95 query computes a p95 on a known histogram.
func checkPromQL(t *testing.T, records []string) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): expanded queries not parsed")
	}
	dir := t.TempDir()
	rules := "groups:\n  - name: adapter\n    rules:\n" + strings.Join(records, "")
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o644)
	if out, err := exec.Command(promtool, "check", "rules", filepath.Join(dir, "rules.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, rules)
	}
	// 100 requests/min: 90 under 25ms, 9 more under 50ms, 1 under 100ms:
	// p95 interpolates to 25ms + (95-90)/9 * 25ms = 38.9ms. 5xx and checkout
	// requests, slow, must not count.
	bucket := func(journey, class, le string, perMin int) string {
		return fmt.Sprintf("          - series: '%s_bucket{namespace=\"brisk\",pod=\"brisk-api-1\",journey=\"%s\",status_class=\"%s\",le=\"%s\"}'\n            values: '0+%dx10'\n",
			slo.MetricDuration, journey, class, le, perMin)
	}
	var series strings.Builder
	for _, b := range []struct {
		le string
		n  int
	}{{"0.025", 90}, {"0.05", 99}, {"0.1", 100}, {"+Inf", 100}} {
		series.WriteString(bucket("browse", "2xx", b.le, b.n))
		slow := 0 // checkout and 5xx requests all take over 100ms
		if b.le == "+Inf" {
			slow = 500
		}
		series.WriteString(bucket("checkout", "2xx", b.le, slow))
		series.WriteString(bucket("browse", "5xx", b.le, slow))
	}
	test := fmt.Sprintf(`rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s    promql_expr_test:
      - expr: round(%s * 10000)
        eval_time: 8m
        exp_samples:
          - labels: '{pod="brisk-api-1"}'
            value: 389
`, series.String(), hpaLatencyMetric)
	os.WriteFile(filepath.Join(dir, "test.yml"), []byte(test), 0o644)
	cmd := exec.Command(promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
