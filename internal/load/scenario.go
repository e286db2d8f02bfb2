package load

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/briskhq/brisk/internal/catalog"
)

// op is one kind of request a scenario sends.
type op uint8

const (
	opProduct  op = iota // GET /v1/products/{id}
	opSearch             // GET /v1/products?q=...
	opCartPut            // PUT /v1/cart/items/{id}
	opCartGet            // GET /v1/cart
	opCartDel            // DELETE /v1/cart/items/{id}
	opLogin              // POST /v1/auth/login
	opCheckout           // POST /v1/checkout with Idempotency-Key
	numOps
)

// Endpoint names used in reports and budgets.
const (
	EndpointProduct  = "product"
	EndpointSearch   = "search"
	EndpointCart     = "cart"
	EndpointLogin    = "login"
	EndpointCheckout = "checkout"
)

var opEndpoint = [numOps]string{
	opProduct:  EndpointProduct,
	opSearch:   EndpointSearch,
	opCartPut:  EndpointCart,
	opCartGet:  EndpointCart,
	opCartDel:  EndpointCart,
	opLogin:    EndpointLogin,
	opCheckout: EndpointCheckout,
}

// weighted is an op with its share of a scenario's requests (per mille).
type weighted struct {
	op     op
	weight int
}

// scenario is a weighted mix of ops.
type scenario struct {
	name      string
	mix       []weighted
	endpoints []string // in report order
	needUsers bool
}

// Scenario names.
const (
	ScenarioProduct  = "product"
	ScenarioSearch   = "search"
	ScenarioCart     = "cart"
	ScenarioCheckout = "checkout"
	// ScenarioShop is the shopper mix: browse 60%, search 20%, cart 12%,
	// login 3%, checkout 5%.
	ScenarioShop = "shop"
)

var scenarios = map[string][]weighted{
	ScenarioProduct:  {{opProduct, 1000}},
	ScenarioSearch:   {{opSearch, 1000}},
	ScenarioCart:     {{opCartPut, 600}, {opCartGet, 300}, {opCartDel, 100}},
	ScenarioCheckout: {{opCheckout, 1000}},
	ScenarioShop: {
		{opProduct, 600}, {opSearch, 200},
		{opCartPut, 72}, {opCartGet, 36}, {opCartDel, 12},
		{opLogin, 30}, {opCheckout, 50},
	},
}

// Scenarios returns the names of the built-in scenarios.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookupScenario(name string) (*scenario, error) {
	mix, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Scenarios(), ", "))
	}
	s := &scenario{name: name, mix: mix}
	for _, w := range mix {
		ep := opEndpoint[w.op]
		if !slices.Contains(s.endpoints, ep) {
			s.endpoints = append(s.endpoints, ep)
		}
		if w.op >= opCartPut {
			s.needUsers = true
		}
	}
	return s, nil
}

// pick draws an op according to the mix.
func (s *scenario) pick(r *rand.Rand) op {
	if len(s.mix) == 1 {
		return s.mix[0].op
	}
	n := r.IntN(1000)
	for _, w := range s.mix {
		if n < w.weight {
			return w.op
		}
		n -= w.weight
	}
	return s.mix[len(s.mix)-1].op
}

// searchQueries returns URL query strings for GET /v1/products made of
// words and categories that occur in the seeded catalog: 70% text queries,
// 20% category filters, 10% both.
func searchQueries(seed uint64) []string {
	seen := map[string]bool{}
	var words []string
	for _, p := range catalog.Generate(2000) {
		for _, w := range strings.Fields(strings.ToLower(p.Name)) {
			if !seen[w] {
				seen[w] = true
				words = append(words, w)
			}
		}
	}
	var cats []string
	for _, c := range catalog.CategoryNames() {
		cats = append(cats, catalog.CategorySlug(c))
	}
	r := rand.New(rand.NewPCG(seed, 7))
	qs := make([]string, 0, 1000)
	for range 700 {
		qs = append(qs, "q="+words[r.IntN(len(words))]+"&limit=20")
	}
	for range 200 {
		qs = append(qs, "category="+cats[r.IntN(len(cats))]+"&limit=20")
	}
	for range 100 {
		qs = append(qs, "q="+words[r.IntN(len(words))]+"&category="+cats[r.IntN(len(cats))]+"&limit=20")
	}
	return qs
}
