package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestRedact(t *testing.T) {
	const jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"
	tests := []struct {
		name string
		attr slog.Attr
		want string // the logged value
	}{
		{"password", slog.String("password", "hunter2"), Redacted},
		{"flag-style key", slog.String("shopper-password", "hunter2"), Redacted},
		{"token", slog.String("token", "abc"), Redacted},
		{"card token", slog.String("card_token", "tok_visa"), Redacted},
		{"authorization", slog.String("Authorization", "Bearer abc"), Redacted},
		{"empty secret stays empty", slog.String("password", ""), ""},
		{"token ttl is no secret", slog.String("token-ttl", "1h0m0s"), "1h0m0s"},
		{"jwt keys file is no secret", slog.String("jwt-keys", "/etc/keys.json"), "/etc/keys.json"},
		{"jwt in text", slog.String("detail", "bad token "+jwt+" given"), "bad token " + Redacted + " given"},
		{"bearer in text", slog.String("header", "Authorization: Bearer abc.def"), "Authorization: " + Redacted},
		{"card token in text", slog.String("msg2", "charge tok_chargeDeclined failed"), "charge " + Redacted + " failed"},
		{"card token in error", slog.Any("err", fmt.Errorf("authorize tok_visa: %w", errors.New("down"))), "authorize " + Redacted + ": down"},
		{"plain error", slog.Any("err", errors.New("disk full")), "disk full"},
		{"plain text", slog.String("path", "/v1/products/7"), "/v1/products/7"},
		{"number", slog.Int("token_count", 3), "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(nil, tt.attr)
			if got.Value.Resolve().String() != tt.want && fmt.Sprint(got.Value.Any()) != tt.want {
				t.Errorf("Redact(%v) = %v, want %q", tt.attr, got.Value, tt.want)
			}
		})
	}
}

func TestLoggerRedactsAndCarriesTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelDebug)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.With("service", "api").WarnContext(ctx, "login failed", "password", "hunter2", slog.Group("req", "authorization", "Bearer xyz"))
	log.Info("no span")
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, want := range []string{`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`, `"span_id":"00f067aa0ba902b7"`, `"password":"[REDACTED]"`, `"authorization":"[REDACTED]"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line lacks %s: %s", want, lines[0])
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "xyz") {
		t.Errorf("secret logged: %s", out)
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("line without a span has a trace id: %s", lines[1])
	}
}
