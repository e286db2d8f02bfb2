// Package api holds brisk's interface definitions: the OpenAPI document of
// the REST API and (in payment/v1) the payment service's protobuf.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the storefront API.
//
//go:embed openapi.yaml
var OpenAPI []byte
