package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a real program running inside a host, its stdout and stderr
// captured to a per-host log file.
type Process struct {
	Host    *Host
	Name    string
	LogPath string
	Cmd     *exec.Cmd

	done chan struct{}
	mu   sync.Mutex
	err  error
}

// Start runs argv inside the host, in its own process group, logging to
// <lab dir>/<host>-<name>.log (appended to, so a restart keeps the history).
func (h *Host) Start(name string, argv ...string) (*Process, error) {
	logPath := filepath.Join(h.lab.Dir, h.Name+"-"+name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s start: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// No Pdeathsig: it fires when the forking thread exits, and ours is discarded at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Host: h, Name: name, LogPath: logPath, Cmd: cmd, done: make(chan struct{})}
	// The child inherits the namespace of the thread that forks it.
	if err := h.Do(cmd.Start); err != nil {
		logf.Close()
		return nil, fmt.Errorf("netlab: %s: start %s: %w", h.Name, name, err)
	}
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), cmd.ProcessState)
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process's whole group (daemons fork).
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("netlab: %s/%s is not running", p.Host.Name, p.Name)
	}
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Kill SIGKILLs the process group and waits for the process to exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop freezes the process group (SIGSTOP); Cont thaws it.
func (p *Process) Stop() error { return p.Signal(syscall.SIGSTOP) }

// Cont resumes a stopped process group.
func (p *Process) Cont() error { return p.Signal(syscall.SIGCONT) }

// Terminate sends SIGTERM and waits up to timeout, then SIGKILLs.
func (p *Process) Terminate(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return p.Kill()
	}
}

// Wait waits for the process to exit and returns its error.
func (p *Process) Wait() error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (p *Process) kill() {
	if p.Running() {
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGCONT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
}
