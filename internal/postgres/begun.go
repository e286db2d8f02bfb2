package postgres

import (
	"sync"

	"github.com/briskhq/brisk/internal/checkout"
)

// maxBegun bounds the orders remembered between Begin and their finish.
const maxBegun = 4096

// begunOrders remembers the orders this process began (as Begin wrote
// them) until Complete, Fail or Release takes them, so that finishing an
// order can send everything in one round trip: the response stored on the
// key is made from the remembered order, which is exact because a pending
// order's row and lines never change until it is finished, and the finish
// only applies while the order is still pending. An order that is not
// here (begun by another instance, evicted, or read back by the
// reconciler) is finished the slower way, reading it first. Safe for
// concurrent use.
type begunOrders struct {
	mu sync.Mutex
	m  map[string]checkout.Order
}

func (b *begunOrders) put(o checkout.Order) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]checkout.Order)
	}
	if len(b.m) >= maxBegun {
		// Orders left pending (payment outcome unknown) are finished by
		// the reconciler, maybe elsewhere: drop arbitrary entries.
		for k := range b.m {
			delete(b.m, k)
			if len(b.m) < maxBegun*3/4 {
				break
			}
		}
	}
	b.m[o.ID] = o
}

// take returns and forgets the order with id.
func (b *begunOrders) take(id string) (checkout.Order, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.m[id]
	if ok {
		delete(b.m, id)
	}
	return o, ok
}
