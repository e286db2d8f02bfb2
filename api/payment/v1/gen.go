// Package paymentv1 holds the generated protobuf and gRPC code of the
// payment service (payment.proto). Regenerate with `go generate ./api/...`;
// it needs protoc (Debian protobuf-compiler) and the Go plugins installed
// with `go install` into $(go env GOPATH)/bin:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package paymentv1

// The directive finds the plugins where go install puts them (GOBIN, else
// the first GOPATH entry's bin), so it works when PATH lacks that directory.
// $DOLLAR is go generate's escape for a literal dollar sign.
//
//go:generate sh -c "bin=$DOLLAR(go env GOBIN); [ -n \"$DOLLAR{bin}\" ] || bin=$DOLLAR(go env GOPATH | cut -d: -f1)/bin; protoc -I . --plugin=protoc-gen-go=$DOLLAR{bin}/protoc-gen-go --plugin=protoc-gen-go-grpc=$DOLLAR{bin}/protoc-gen-go-grpc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative payment.proto"
