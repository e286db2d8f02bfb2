package catalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/money"
)

// Loader bulk-loads a generated catalog. Implementations: sqlite, postgres.
type Loader interface {
	// LoadProducts inserts products (IDs given) with Initial = Available,
	// creating their categories; existing ids are left untouched.
	LoadProducts(ctx context.Context, ps []Product) error
	// CountProducts returns how many products exist.
	CountProducts(ctx context.Context) (int64, error)
}

// DefaultProducts is the size of the seeded demo catalog.
const DefaultProducts = 10_000

var (
	categoryNames = []string{
		"Audio", "Bags", "Bakeware", "Bath", "Bedding", "Bikes", "Books", "Cameras",
		"Camping", "Candles", "Ceramics", "Cleaning", "Climbing", "Coffee", "Computers", "Cookware",
		"Cycling Wear", "Desk", "Drinkware", "Fitness", "Footwear", "Games", "Garden", "Gloves",
		"Hats", "Headphones", "Jackets", "Jewellery", "Kids", "Kitchen Tools", "Knitwear", "Lamps",
		"Luggage", "Music", "Notebooks", "Outdoor Cooking", "Paper", "Pets", "Phones", "Plants",
		"Rugs", "Running", "Skincare", "Sleep", "Socks", "Storage", "Swimwear", "Tea",
		"Tools", "Watches",
	}
	adjectives = []string{
		"Alpine", "Brisk", "Classic", "Compact", "Coastal", "Daily", "Deluxe", "Everyday",
		"Field", "Featherweight", "Heritage", "Indigo", "Linen", "Midnight", "Modern", "Nordic",
		"Original", "Pocket", "Premium", "Quiet", "Rugged", "Solar", "Studio", "Summit",
		"Trail", "Urban", "Velvet", "Vintage", "Weekend", "Woven",
	}
	materials = []string{
		"Oak", "Walnut", "Canvas", "Leather", "Steel", "Copper", "Wool", "Cotton",
		"Bamboo", "Ceramic", "Glass", "Merino", "Cork", "Granite", "Hemp", "Titanium",
	}
	nouns = []string{
		"Kit", "Set", "Pack", "Edition", "Bundle", "Model", "Series", "Collection",
	}
)

// CategorySlug turns a category name into its slug ("Cycling Wear" -> "cycling-wear").
func CategorySlug(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), " ", "-")
}

// CategoryNames returns the seeded category names, in slug order.
func CategoryNames() []string { return append([]string(nil), categoryNames...) }

// Generate returns n products with ids 1..n, the same on every call:
// names, descriptions, categories (about 50), prices in USD cents and stock
// come from a fixed-seed generator.
func Generate(n int) []Product {
	r := rand.New(rand.NewPCG(0xb415c, 0x5eed))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ps := make([]Product, n)
	for i := range ps {
		cat := categoryNames[r.IntN(len(categoryNames))]
		adj := adjectives[r.IntN(len(adjectives))]
		mat := materials[r.IntN(len(materials))]
		noun := nouns[r.IntN(len(nouns))]
		id := int64(i + 1)
		name := fmt.Sprintf("%s %s %s %s", adj, mat, singular(cat), noun)
		ps[i] = Product{
			ID:   id,
			SKU:  fmt.Sprintf("BRK-%06d", id),
			Name: name,
			Description: fmt.Sprintf("The %s is a %s piece from our %s range, made of %s. Item %d of the brisk demo catalog.",
				name, strings.ToLower(adj), strings.ToLower(cat), strings.ToLower(mat), id),
			Category:  CategorySlug(cat),
			Price:     money.Money{Amount: int64(199 + r.IntN(49_800)), Currency: "USD"},
			Available: int64(10 + r.IntN(491)),
			Version:   1,
			UpdatedAt: now,
		}
	}
	return ps
}

func singular(cat string) string {
	w := strings.Fields(cat)
	last := w[len(w)-1]
	if strings.HasSuffix(last, "s") && !strings.HasSuffix(last, "ss") {
		w[len(w)-1] = strings.TrimSuffix(last, "s")
	}
	return strings.Join(w, " ")
}

// CategoryName turns a slug back into a display name ("cycling-wear" -> "Cycling Wear").
func CategoryName(slug string) string {
	w := strings.Split(slug, "-")
	for i, s := range w {
		if s != "" {
			w[i] = strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return strings.Join(w, " ")
}
