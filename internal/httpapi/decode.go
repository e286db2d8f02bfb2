package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/problem"
)

// decodeJSON reads exactly one JSON object from r's body into v, strictly:
// unknown fields, wrong types, trailing data and bodies over MaxBodyBytes
// are errors that say what is wrong.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/problem+json") {
			return errStatus(http.StatusUnsupportedMediaType, problem.TypeValidation, "Content-Type must be application/json")
		}
	}
	return decode(r.Body, v)
}

// decode is decodeJSON without the header check; fuzzed directly.
func decode(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if isTooLarge(err) {
			return decodeError(err)
		}
		return derrors.New(derrors.Invalid, "request body must contain a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case isTooLarge(err):
		return errStatus(http.StatusRequestEntityTooLarge, problem.TypeTooLarge, fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes))
	case errors.Is(err, io.EOF):
		return derrors.New(derrors.Invalid, "request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return derrors.New(derrors.Invalid, "request body is truncated JSON")
	case errors.As(err, &syn):
		return derrors.New(derrors.Invalid, "request body is malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return derrors.New(derrors.Invalid, "request body must be a JSON object")
		}
		return derrors.New(derrors.Invalid, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	default:
		if f, ok := unknownField(err); ok {
			return derrors.New(derrors.Invalid, "unknown field %s", f)
		}
		return derrors.New(derrors.Invalid, "request body is not valid JSON: %v", err)
	}
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return kind
}

// unknownField extracts the field name from encoding/json's
// `json: unknown field "x"` error (it has no typed error for it).
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field "
	s := err.Error()
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// pathID parses a positive integer path parameter.
func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != s {
		return 0, derrors.New(derrors.Invalid, "%s must be a positive integer, got %q", name, s)
	}
	return id, nil
}

// writeJSON sends v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	writeBytes(w, status, "application/json", b)
	return nil
}

func writeBytes(w http.ResponseWriter, status int, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
