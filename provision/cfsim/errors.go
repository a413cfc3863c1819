package cfsim

import (
	"encoding/json"
	"net/http"
)

// apiError is one entry of the CC error envelope.
type apiError struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	status int
}

func errNotAuthenticated() *apiError {
	return &apiError{Code: 10002, Title: "CF-NotAuthenticated", Detail: "Authentication error", status: 401}
}

func errInvalidToken() *apiError {
	return &apiError{Code: 1000, Title: "CF-InvalidAuthToken", Detail: "Invalid Auth Token", status: 401}
}

func errNotAuthorized() *apiError {
	return &apiError{Code: 10003, Title: "CF-NotAuthorized", Detail: "You are not authorized to perform the requested action", status: 403}
}

func errBadQuery(detail string) *apiError {
	return &apiError{Code: 10005, Title: "CF-BadQueryParameter", Detail: "The query parameter is invalid: " + detail, status: 400}
}

func errUnprocessable(detail string) *apiError {
	return &apiError{Code: 10008, Title: "CF-UnprocessableEntity", Detail: detail, status: 422}
}

func errNotFound(resource string) *apiError {
	return &apiError{Code: 10010, Title: "CF-ResourceNotFound", Detail: resource + " not found", status: 404}
}

func errInstanceNotFound() *apiError { return errNotFound("Service instance") }

func errKeyNotFound() *apiError { return errNotFound("Service credential binding") }

func errUnknownRequest() *apiError {
	return &apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request", status: 404}
}

func errMessageParse(detail string) *apiError {
	return &apiError{Code: 1001, Title: "CF-MessageParseError", Detail: "Request invalid due to parse error: " + detail, status: 400}
}

func errInProgress(name string) *apiError {
	return &apiError{Code: 60016, Title: "CF-AsyncServiceInstanceOperationInProgress", Detail: "An operation for service instance " + name + " is in progress.", status: 409}
}

func errMethod() *apiError {
	return &apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request", status: 404}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"errors": []*apiError{e}})
}
