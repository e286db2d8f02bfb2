package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/problem"
)

// dashboardData serves /dashboard/data?since=SEQ: the points newer than
// SEQ and the current cache and SLO views. With Config.Tokens set it needs
// a bearer token with the admin role.
func (h *Handler) dashboardData(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Tokens != nil {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			writeProblem(w, http.StatusUnauthorized, problem.TypeUnauthorized, "the dashboard needs an Authorization: Bearer token of an admin")
			return
		}
		c, err := h.cfg.Tokens.Verify(tok)
		if err != nil {
			writeProblem(w, http.StatusUnauthorized, problem.TypeUnauthorized, "invalid or expired token")
			return
		}
		if c.Role != auth.RoleAdmin {
			writeProblem(w, http.StatusForbidden, problem.TypeForbidden, "the dashboard needs the admin role")
			return
		}
	}
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, problem.TypeValidation, "since must be a sample number")
			return
		}
		since = n
	}
	b, err := json.Marshal(h.sampler.Data(since))
	if err != nil {
		h.log.ErrorContext(r.Context(), "dashboard: encode", "err", err)
		writeProblem(w, http.StatusInternalServerError, problem.TypeBlank, "could not encode the dashboard data")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// writeProblem writes an RFC 9457 problem; the request id is the one the
// API's middleware put in the X-Request-Id response header.
func writeProblem(w http.ResponseWriter, status int, typ, detail string) {
	p := problem.Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail, RequestID: w.Header().Get("X-Request-Id")}
	b := p.JSON()
	w.Header().Set("Content-Type", problem.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
