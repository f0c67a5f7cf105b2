// Command pulumi-language-python lets the Pulumi CLI built by scripts/cluster-tools.sh run Python
// programs and Python policy packs through the Python language host of an older sdk/v3 release (the
// only one the Go module proxy serves: the current host lives in a nested module it refuses).
//
// The CLI finds this command under the language host's name. It starts the real host
// (pulumi-language-python-host, built by the same script) and forwards every LanguageRuntime call to
// it unchanged, except that it translates what the newer CLI says into what the older host reads:
//
//   - The CLI describes the program (or policy pack) only in the newer ProgramInfo message (root and
//     program folders, entry point, runtime options). The old host reads the runtime options from its
//     command line, so one host is started per virtualenv named in ProgramInfo.options.virtualenv
//     (resolved against the root folder, as Pulumi.yaml's runtime.options.virtualenv is), and a
//     program or pack without one runs with the python3 found on PATH.
//   - RunPlugin, how the CLI starts a folder policy pack, carries the pack's folder only in ProgramInfo;
//     the old host reads the deprecated `program` field, which is filled in from it (Run likewise
//     when the CLI leaves it empty).
//
// Handshake and GetRequiredPackages are answered "unimplemented" by the old host, after which the CLI
// falls back to its older calls. The host is found as SLM_PYTHON_LANGUAGE_HOST when set, else as
// pulumi-language-python-host next to this command (as the CLI named it, then with links resolved).
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

// Pulumi's own gRPC limit for messages between the engine and its plugins (400 MiB).
const maxMessageSize = 400 * 1024 * 1024

func main() {
	hostPath, err := findHost()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
	// Everything on the command line (the engine's address last, logging flags before it) is for the host.
	hosts := newHostPool(hostPath, os.Args[1:])
	defer hosts.stopAll()

	server := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(hosts.forward),
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
	)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
	// The CLI reads the port from the first line of stdout.
	fmt.Printf("%d\n", listener.Addr().(*net.TCPAddr).Port)

	go stopOnSignal(server)
	go stopWhenOrphaned(server)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
	}
}

func stopOnSignal(server *grpc.Server) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	server.Stop()
}

// stopWhenOrphaned stops serving when the CLI that started this process has gone (this process is then
// adopted by another parent), so that neither it nor its hosts outlive a killed CLI.
func stopWhenOrphaned(server *grpc.Server) {
	parent := os.Getppid()
	for os.Getppid() == parent {
		time.Sleep(time.Second)
	}
	server.Stop()
}
