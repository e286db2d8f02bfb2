package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/problem"
	"github.com/briskhq/brisk/internal/telemetry"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	claimsKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// newRequestID returns 32 hex digits, the shape of a W3C trace id.
func newRequestID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return telemetry.HexID(b)
}

// requestID gives every request an id, in its context and in the
// X-Request-Id response header: the trace id of the request's span when
// tracing is on, else a random one of the same shape.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
			id = telemetry.HexID(sc.TraceID())
		} else {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// recoverPanics turns a handler panic into a 500 problem and a log line
// with the stack, instead of a dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "request_id", requestID(r.Context()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies at MaxBodyBytes; decodeJSON reports 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			s.writeError(w, r, errStatus(http.StatusRequestEntityTooLarge, problem.TypeTooLarge,
				fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

var allMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// notFoundOrMethod answers unknown paths (404) and wrong methods (405 with
// Allow) with problem+json instead of ServeMux's plain text.
func (s *Server) notFoundOrMethod(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			telemetry.SetRoute(r.Context(), pattern)
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		for _, m := range allMethods {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := mux.Handler(r2); p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 && s.Web != nil && !strings.HasPrefix(r.URL.Path, "/v1/") {
			s.Web.ServeHTTP(w, r)
			return
		}
		if len(allow) == 0 {
			s.writeError(w, r, errStatus(http.StatusNotFound, problem.TypeNotFound, "no route for "+r.URL.Path))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, errStatus(http.StatusMethodNotAllowed, problem.TypeBlank,
			fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, strings.Join(allow, ", "))))
	})
}

// user requires a valid bearer token; the claims go into the context.
func (s *Server) user(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		authz := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok || tok == "" {
			return derrors.New(derrors.Unauthenticated, "an Authorization: Bearer token is required")
		}
		c, err := s.Tokens.Verify(tok)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), claimsKey, c)))
	}
}

// admin requires a valid token with the admin role.
func (s *Server) admin(h handlerFunc) handlerFunc {
	return s.user(func(w http.ResponseWriter, r *http.Request) error {
		if claims(r.Context()).Role != auth.RoleAdmin {
			return derrors.New(derrors.Forbidden, "this route needs the admin role")
		}
		return h(w, r)
	})
}

func claims(ctx context.Context) auth.Claims {
	c, _ := ctx.Value(claimsKey).(auth.Claims)
	return c
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
