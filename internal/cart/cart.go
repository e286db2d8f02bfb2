// Package cart holds the shopping cart of a signed-in user.
package cart

import (
	"context"
	"fmt"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

// Bounds of a cart.
const (
	MaxQuantity = 99 // per line
	MaxLines    = 50 // distinct products
)

// Item is one stored line of a cart.
type Item struct {
	ProductID int64
	Quantity  int
}

// Store keeps carts. Implementations: sqlite (embedded), redis.
type Store interface {
	// Items returns the user's cart lines, ordered by product id.
	Items(ctx context.Context, userID int64) ([]Item, error)
	// SetItem sets the quantity of one line (1..MaxQuantity), adding it if
	// absent. It fails with derrors.Conflict if adding would exceed maxLines.
	SetItem(ctx context.Context, userID, productID int64, quantity, maxLines int) error
	// RemoveItem deletes one line; removing an absent line is not an error.
	RemoveItem(ctx context.Context, userID, productID int64) error
	// Clear empties the cart.
	Clear(ctx context.Context, userID int64) error
}

// Line is a priced cart line as shown to the user.
type Line struct {
	ProductID int64       `json:"product_id"`
	Name      string      `json:"name"`
	Quantity  int         `json:"quantity"`
	UnitPrice money.Money `json:"unit_price"`
	LineTotal money.Money `json:"line_total"`
	Available int64       `json:"available"`
}

// Cart is a priced cart.
type Cart struct {
	Items     []Line      `json:"items"`
	ItemCount int         `json:"item_count"`
	Total     money.Money `json:"total"`
}

// Service prices carts with the catalog.
type Service struct {
	Store   Store
	Catalog catalog.Store
}

// Get returns the user's priced cart. Lines whose product no longer exists are dropped.
func (s *Service) Get(ctx context.Context, userID int64) (Cart, error) {
	items, err := s.Store.Items(ctx, userID)
	if err != nil {
		return Cart{}, fmt.Errorf("get cart: %w", err)
	}
	return s.price(ctx, items)
}

// Set sets the quantity of a product in the user's cart and returns the cart.
func (s *Service) Set(ctx context.Context, userID, productID int64, quantity int) (Cart, error) {
	if quantity < 1 || quantity > MaxQuantity {
		return Cart{}, derrors.New(derrors.Invalid, "quantity must be from 1 to %d", MaxQuantity)
	}
	if _, err := s.Catalog.Product(ctx, productID); err != nil {
		return Cart{}, err
	}
	if err := s.Store.SetItem(ctx, userID, productID, quantity, MaxLines); err != nil {
		return Cart{}, fmt.Errorf("set cart item: %w", err)
	}
	return s.Get(ctx, userID)
}

// Remove deletes a product from the user's cart and returns the cart.
func (s *Service) Remove(ctx context.Context, userID, productID int64) (Cart, error) {
	if err := s.Store.RemoveItem(ctx, userID, productID); err != nil {
		return Cart{}, fmt.Errorf("remove cart item: %w", err)
	}
	return s.Get(ctx, userID)
}

func (s *Service) price(ctx context.Context, items []Item) (Cart, error) {
	c := Cart{Items: []Line{}}
	if len(items) == 0 {
		return c, nil
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	products, err := s.Catalog.Products(ctx, ids)
	if err != nil {
		return Cart{}, fmt.Errorf("price cart: %w", err)
	}
	for _, it := range items {
		p, ok := products[it.ProductID]
		if !ok {
			continue
		}
		l := Line{
			ProductID: p.ID, Name: p.Name, Quantity: it.Quantity,
			UnitPrice: p.Price, LineTotal: p.Price.Times(int64(it.Quantity)), Available: p.Available,
		}
		total, err := c.Total.Add(l.LineTotal)
		if err != nil {
			return Cart{}, fmt.Errorf("price cart: %w", err)
		}
		c.Total = total
		c.Items = append(c.Items, l)
		c.ItemCount += it.Quantity
	}
	return c, nil
}
