package telemetry

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns brisk's logger: JSON lines on w at level, each record
// made under a span carrying its trace_id and span_id, secrets redacted
// (see Redact).
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewLogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: Redact})))
}

// NewLogHandler wraps h so that records logged with a context holding a
// valid span carry its trace_id and span_id.
func NewLogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// Redacted replaces a secret in the logs.
const Redacted = "[REDACTED]"

// sensitiveKeys are attribute keys (lower case, "-" as "_") whose values
// are secrets; a key ending in "_"+one of them is one too
// ("shopper_password", "card_token").
var sensitiveKeys = []string{"password", "passwd", "secret", "token", "authorization", "cookie", "set_cookie", "api_key", "private_key", "card_token"}

// sensitiveSuffixes are "_"+sensitiveKeys.
var sensitiveSuffixes = func() []string {
	out := make([]string, len(sensitiveKeys))
	for i, k := range sensitiveKeys {
		out[i] = "_" + k
	}
	return out
}()

func sensitiveKey(key string) bool {
	k := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	for i, s := range sensitiveKeys {
		if k == s || strings.HasSuffix(k, sensitiveSuffixes[i]) {
			return true
		}
	}
	return false
}

// secretPattern finds secrets inside free text: bearer credentials, JWTs
// (three base64url parts, the first a JSON header) and card tokens
// (tok_...).
var secretPattern = regexp.MustCompile(`(?i:bearer)\s+[A-Za-z0-9._~+/=-]+|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|\btok_[A-Za-z0-9_]+`)

// mayHoldSecret is a cheap test before the regular expression.
func mayHoldSecret(s string) bool {
	return strings.Contains(s, "eyJ") || strings.Contains(s, "tok_") || strings.Contains(s, "earer")
}

// RedactString replaces bearer credentials, JWTs and card tokens in s.
func RedactString(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	return secretPattern.ReplaceAllString(s, Redacted)
}

// Redact is a slog ReplaceAttr function that keeps secrets out of logs:
// values of sensitive keys (password, token, authorization, card_token,
// ...) are replaced whole, and bearer credentials, JWTs and card tokens
// are cut out of strings and error messages.
func Redact(groups []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindGroup && sensitiveKey(a.Key) && !emptyValue(a.Value) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); mayHoldSecret(s) {
			return slog.String(a.Key, RedactString(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s := err.Error(); mayHoldSecret(s) {
				return slog.String(a.Key, RedactString(s))
			}
		}
	}
	return a
}

func emptyValue(v slog.Value) bool { return v.Kind() == slog.KindString && v.String() == "" }
