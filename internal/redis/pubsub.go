package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// Publish sends msg to every subscriber of channel.
func (c *Client) Publish(ctx context.Context, channel, msg string) error {
	return wrapErr("publish", c.rdb.Publish(ctx, c.key(channel), msg).Err())
}

// SubscribeOption configures Subscribe.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	onSubscribed func()
}

// OnSubscribed calls f each time the subscription is (re)established: first
// when it starts, then after every reconnection. Messages published while
// the connection was down are lost, so an L1 cache should drop everything
// in f.
func OnSubscribed(f func()) SubscribeOption {
	return func(o *subscribeOptions) { o.onSubscribed = f }
}

// Subscribe calls fn, from one goroutine, with each message published on
// channel until ctx is done; then it returns nil. It survives Redis
// restarts: go-redis pings the connection every few seconds, reconnects
// and subscribes again (see OnSubscribed). Run it in its own goroutine.
func (c *Client) Subscribe(ctx context.Context, channel string, fn func(msg string), opts ...SubscribeOption) error {
	var o subscribeOptions
	for _, opt := range opts {
		opt(&o)
	}
	ps := c.rdb.Subscribe(ctx, c.key(channel))
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return wrapErr("subscribe", goredis.ErrClosed)
			}
			switch m := m.(type) {
			case *goredis.Subscription:
				if m.Kind == "subscribe" {
					c.logger.Debug("redis subscribed", "channel", m.Channel)
					if o.onSubscribed != nil {
						o.onSubscribed()
					}
				}
			case *goredis.Message:
				fn(m.Payload)
			}
		}
	}
}
