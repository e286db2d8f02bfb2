package httpapi

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/briskhq/brisk/api"
)

// TestSpecMatchesRoutes fails when a route exists in the server but not in
// api/openapi.yaml, or the reverse.
func TestSpecMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	var spec []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				spec = append(spec, strings.ToUpper(method)+" "+path)
			}
		}
	}
	server := New(Deps{}).Patterns()
	slices.Sort(spec)
	slices.Sort(server)
	for _, p := range server {
		if !slices.Contains(spec, p) {
			t.Errorf("route %q is served but not in api/openapi.yaml", p)
		}
	}
	for _, p := range spec {
		if !slices.Contains(server, p) {
			t.Errorf("route %q is in api/openapi.yaml but not served", p)
		}
	}
	if len(server) < 15 {
		t.Errorf("server has %d routes, want all of the design's", len(server))
	}
}
