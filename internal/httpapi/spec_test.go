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

// TestSpecDocumentsEdgeAnswers: every /v1 operation documents the edge's
// answers — 429 (rate limits, with Retry-After and the RateLimit fields)
// and 503 (shed, draining, a dependency down) — and the cached GETs their
// caching headers; every $ref resolves.
func TestSpecDocumentsEdgeAnswers(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	get := func(v any, keys ...string) any {
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	ref := func(v any) string { s, _ := get(v, "$ref").(string); return s }
	n := 0
	for path, item := range doc["paths"].(map[string]any) {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			n++
			resp := get(op, "responses")
			if r := ref(get(resp, "429")); r != "#/components/responses/RateLimited" {
				t.Errorf("%s %s: 429 is %q, want the RateLimited response", method, path, r)
			}
			if r := ref(get(resp, "503")); r != "#/components/responses/Unavailable" {
				t.Errorf("%s %s: 503 is %q, want the Unavailable response", method, path, r)
			}
		}
	}
	if n < 12 {
		t.Errorf("%d /v1 operations, want all of them", n)
	}
	for _, path := range []string{"/v1/products", "/v1/products/{id}"} {
		h := get(doc, "paths", path, "get", "responses", "200", "headers")
		for _, name := range []string{"ETag", "Cache-Control", "Vary", "Age"} {
			if get(h, name) == nil {
				t.Errorf("GET %s: 200 does not document %s", path, name)
			}
		}
	}
	for _, name := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
		if get(doc, "components", "responses", "RateLimited", "headers", name) == nil {
			t.Errorf("RateLimited does not document %s", name)
		}
	}
	// Every $ref points at something.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				keys := strings.Split(strings.TrimPrefix(r, "#/"), "/")
				if !strings.HasPrefix(r, "#/") || get(doc, keys...) == nil {
					t.Errorf("$ref %q resolves to nothing", r)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
}
