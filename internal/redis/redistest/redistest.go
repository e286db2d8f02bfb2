// Package redistest gives each test a unique key prefix on the test Redis
// and deletes the test's keys afterwards, so tests can run in parallel on
// one server.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultURL is the server tests use when BRISK_TEST_REDIS is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns $BRISK_TEST_REDIS, or DefaultURL.
func URL() string {
	if u := os.Getenv("BRISK_TEST_REDIS"); u != "" {
		return u
	}
	return DefaultURL
}

// New returns the test Redis URL and a key prefix unique to this test
// ("brisk_t:<random>:"). Keys under the prefix (and rate limiter keys,
// "rate:<prefix>...") are deleted when the test ends. When the server cannot be reached the test is skipped, or fails
// when the environment has CI=true.
func New(t testing.TB) (url string, prefix string) {
	t.Helper()
	url = URL()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("redistest: BRISK_TEST_REDIS: %v", err)
	}
	opt.DialTimeout = time.Second
	rdb := goredis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		msg := "Redis test server unreachable (set BRISK_TEST_REDIS to a redis:// URL): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var b [6]byte
	rand.Read(b[:])
	prefix = "brisk_t:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var keys []string
		// go-redis/redis_rate puts its own "rate:" before the prefix.
		for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
			iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Errorf("redistest: scan %s: %v", pattern, err)
				return
			}
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("redistest: delete %s*: %v", prefix, err)
				return
			}
			keys = keys[n:]
		}
	})
	return url, prefix
}
