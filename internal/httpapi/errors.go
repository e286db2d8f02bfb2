package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/problem"
)

// httpError is an error with its own HTTP status and problem type, for the
// transport's own failures (bad JSON, too large, wrong method).
type httpError struct {
	status int
	typ    string
	detail string
	header http.Header
}

func (e *httpError) Error() string { return e.detail }

func errStatus(status int, typ, format string) error {
	return &httpError{status: status, typ: typ, detail: format}
}

// kinds maps each domain error kind to its status and problem type, in one table.
var kinds = []struct {
	kind   error
	status int
	typ    string
}{
	{derrors.Invalid, http.StatusBadRequest, problem.TypeValidation},
	{derrors.NotFound, http.StatusNotFound, problem.TypeNotFound},
	{derrors.Mismatch, http.StatusUnprocessableEntity, problem.TypeKeyReused},
	{derrors.Unauthenticated, http.StatusUnauthorized, problem.TypeUnauthorized},
	{derrors.Forbidden, http.StatusForbidden, problem.TypeForbidden},
	{derrors.PaymentDeclined, http.StatusPaymentRequired, problem.TypePaymentDecline},
	{derrors.Unavailable, http.StatusServiceUnavailable, problem.TypeUnavailable},
	{derrors.Conflict, http.StatusConflict, problem.TypeConflict},
}

// toProblem maps err to the problem sent to the client. Unexpected errors
// become a 500 whose detail reveals nothing.
func toProblem(err error, requestID string) (problem.Problem, http.Header) {
	p := problem.Problem{RequestID: requestID}
	var he *httpError
	switch {
	case errors.As(err, &he):
		p.Status, p.Type, p.Detail = he.status, he.typ, he.detail
		p.Title = http.StatusText(he.status)
		return p, he.header
	case errors.Is(err, context.DeadlineExceeded):
		p.Status, p.Type, p.Title = http.StatusServiceUnavailable, problem.TypeUnavailable, "Service Unavailable"
		p.Detail = "the request did not finish in time; retry later"
		return p, retryAfter("1")
	}
	for _, k := range kinds {
		if errors.Is(err, k.kind) {
			p.Status, p.Type, p.Title = k.status, k.typ, http.StatusText(k.status)
			p.Detail = derrors.Detail(err)
			if p.Detail == "" {
				p.Detail = k.kind.Error()
			}
			var h http.Header
			switch {
			case errors.Is(err, checkout.ErrOutOfStock):
				p.Type, p.Title = problem.TypeOutOfStock, "Out of stock"
			case errors.Is(err, checkout.ErrKeyExists) && k.kind == derrors.Conflict:
				p.Type, p.Title = problem.TypeInFlight, "Request in flight"
				h = retryAfter("1")
			case k.kind == derrors.Unavailable:
				h = retryAfter("1")
			case k.kind == derrors.Unauthenticated:
				h = http.Header{"Www-Authenticate": {`Bearer realm="brisk"`}}
			}
			return p, h
		}
	}
	p.Status, p.Type, p.Title = http.StatusInternalServerError, problem.TypeBlank, "Internal Server Error"
	p.Detail = "an unexpected error occurred; the request id identifies it in the logs"
	return p, nil
}

func retryAfter(s string) http.Header { return http.Header{"Retry-After": {s}} }

// writeError sends err as problem+json and logs it (server errors at error
// level, client errors at debug).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	id := requestID(r.Context())
	p, h := toProblem(err, id)
	for k, vs := range h {
		w.Header()[k] = vs
	}
	level := slog.LevelDebug
	if p.Status >= 500 {
		level = slog.LevelError
		if p.Status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
	}
	s.log.Log(r.Context(), level, "request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", p.Status, "err", err)
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p problem.Problem) {
	w.Header().Set("Content-Type", problem.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(p.JSON())
}
