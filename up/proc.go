package up

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Command is a program the supervisor runs.
type Command struct {
	// Path is the program: an absolute path, a path relative to Dir, or a
	// name looked up in $PATH.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is added to the supervisor's own environment ("NAME=value");
	// later entries win.
	Env []string
	// Dir is the working directory; "" is the supervisor's.
	Dir string
}

// process is one started program, leader of its own process group so that
// stopping it also stops whatever it started. Its fields are read-only after
// start; err is valid once done is closed.
type process struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error
}

// startProcess starts c with stdout and stderr written to out.
func startProcess(c Command, out io.Writer) (*process, error) {
	return startProcessStreams(c, out, out)
}

// flusher is an output writer that holds a partial last line; Flush is
// called once the process has exited and its output is copied.
type flusher interface{ Flush() }

// startProcessStreams starts c with stdout and stderr written to their own
// writers (one pipe when they are the same writer).
func startProcessStreams(c Command, stdout, stderr io.Writer) (*process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps the output pipe open must not keep Wait
	// from returning once the process itself has exited.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Path, err)
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, w := range []io.Writer{stdout, stderr} {
			if f, ok := w.(flusher); ok {
				f.Flush()
			}
		}
		close(p.done)
	}()
	return p, nil
}

// signalGroup sends sig to the process group; it reports whether the group
// still existed.
func (p *process) signalGroup(sig syscall.Signal) bool {
	err := syscall.Kill(-p.pid, sig)
	return !errors.Is(err, syscall.ESRCH)
}

// stop sends SIGTERM to the group, waits until the process has exited or
// the timer fired, then sends SIGKILL to the group (which also reaches
// children that outlived the leader) and waits for the exit.
func (p *process) stop(clk Clock, grace time.Duration) {
	p.signalGroup(syscall.SIGTERM)
	t := clk.NewTimer(grace)
	select {
	case <-p.done:
		t.Stop()
	case <-t.C():
	}
	// Children of the leader may still run even when it has exited.
	p.signalGroup(syscall.SIGKILL)
	<-p.done
	p.awaitGroupGone()
}

// awaitGroupGone waits (up to a second) until no member of the process
// group is left, so that a caller that returns leaves no process behind.
// Members are not our children: there is nothing to wait on but kill(2).
func (p *process) awaitGroupGone() {
	for i := 0; i < 100 && p.signalGroup(0); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// exitReason describes how a process ended: "exit status 2",
// "signal: killed".
func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
