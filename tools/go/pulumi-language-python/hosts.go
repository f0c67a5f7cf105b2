package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const hostName = "pulumi-language-python-host"

// findHost locates the real language host (see the package comment).
func findHost() (string, error) {
	if given := os.Getenv("SLM_PYTHON_LANGUAGE_HOST"); given != "" {
		return given, nil
	}
	var dirs []string
	if strings.ContainsRune(os.Args[0], os.PathSeparator) {
		dirs = append(dirs, filepath.Dir(os.Args[0]))
	}
	if self, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			dirs = append(dirs, filepath.Dir(resolved))
		}
	}
	for _, dir := range dirs {
		candidate := filepath.Join(dir, hostName)
		if info, err := os.Stat(candidate); err == nil && !info.IsDir() {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%s not found next to this command (looked in %s); "+
		"build it with scripts/cluster-tools.sh pulumi or set SLM_PYTHON_LANGUAGE_HOST", hostName, strings.Join(dirs, ", "))
}

// host is one running instance of the real language host.
type host struct {
	cmd  *exec.Cmd
	conn *grpc.ClientConn
}

// hostPool starts one host per virtualenv on first use and keeps it for the life of this process.
type hostPool struct {
	path  string
	args  []string
	mu    sync.Mutex
	hosts map[string]*host
}

func newHostPool(path string, args []string) *hostPool {
	return &hostPool{path: path, args: args, hosts: map[string]*host{}}
}

// get returns the host for a virtualenv ("" for none); with anyHost, a call that names no program
// (GetPluginInfo and the like) goes to whichever host is running.
func (p *hostPool) get(virtualenv string, anyHost bool) (*host, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.hosts[virtualenv]; ok {
		return h, nil
	}
	if anyHost {
		for _, h := range p.hosts {
			return h, nil
		}
	}
	h, err := p.start(virtualenv)
	if err != nil {
		return nil, err
	}
	p.hosts[virtualenv] = h
	return h, nil
}

func (p *hostPool) start(virtualenv string) (*host, error) {
	var args []string
	if virtualenv != "" {
		args = append(args, "-virtualenv="+virtualenv)
	}
	args = append(args, p.args...)
	cmd := exec.Command(p.path, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = parentDeathSignal()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.path, err)
	}
	// Like every Pulumi plugin, the host prints the port it serves on as its first line.
	reader := bufio.NewReader(stdout)
	line, err := reader.ReadString('\n')
	port, convErr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || convErr != nil || port <= 0 {
		_ = cmd.Process.Kill()
		waitErr := cmd.Wait()
		return nil, fmt.Errorf("%s did not print its port (read %q): %w", p.path, line, errors.Join(err, convErr, waitErr))
	}
	go func() { _, _ = io.Copy(os.Stderr, reader) }()
	conn, err := grpc.NewClient(
		fmt.Sprintf("127.0.0.1:%d", port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
	)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return &host{cmd: cmd, conn: conn}, nil
}

func (p *hostPool) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, h := range p.hosts {
		_ = h.conn.Close()
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
		delete(p.hosts, key)
	}
}
