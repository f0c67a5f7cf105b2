// Wrapper module for scripts/cluster-tools.sh: builds pulumi-language-python (the .go files here), which
// lets the Pulumi CLI pinned in tools/versions.env run Python programs and policy packs through the older
// Python language host of tools/go/python-host. It speaks the CLI's protocol, from sdk/v3 at the CLI's
// release. To move: change the version here and in tools/versions.env, then `go mod tidy`.
module slm-deploy/tools/pulumi-language-python

go 1.26.6

require (
	github.com/pulumi/pulumi/sdk/v3 v3.274.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261026165753-2ffab32bce7e // indirect
)
