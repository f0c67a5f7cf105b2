// Command pulumi-resource-kubernetes serves the Pulumi Kubernetes provider, built by
// scripts/cluster-tools.sh from the provider module pinned in go.mod.
//
// The provider module's own command embeds two files that its release build generates (the
// package schema with the release version written into it, and the Terraform mapping); they are
// not part of the module, so the script writes them next to a copy of this file in its build
// directory, from schema.json and terraform-mapping.json that the module ships.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
