// Package harness starts and stops the processes the end-to-end tests drive (the Akeyless
// emulator, the provider, the CSI driver) and offers polling helpers. Every process it starts
// is stopped by Stop (SIGTERM, then SIGKILL), by pid, never by name.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process whose output goes to a log file.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	once    sync.Once
}

// Start runs bin with args, its stdout and stderr appended to logDir/name.log.
func Start(name, logDir, bin string, args []string, env []string) (*Proc, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so a Ctrl-C on the test does not race our orderly shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to end and returns its exit error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %s", p.Name, p.Pid(), timeout)
	}
}

// Stop sends SIGTERM, waits up to 10 s, then SIGKILLs. Safe to call more than once.
func (p *Proc) Stop() {
	p.once.Do(func() {
		if p.Exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Log returns the process's log so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail returns the last n lines of the log, for failure messages.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitForLine polls the log until a line matches re, and returns the first submatch.
func (p *Proc) WaitForLine(re *regexp.Regexp, timeout time.Duration) (string, error) {
	var found string
	err := Poll(timeout, 50*time.Millisecond, fmt.Sprintf("%s to log %q", p.Name, re), func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%s exited: %v\n%s", p.Name, p.waitErr, p.Tail(20))
		}
		f, err := os.Open(p.LogPath)
		if err != nil {
			return false, nil
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if m := re.FindStringSubmatch(s.Text()); m != nil {
				if len(m) > 1 {
					found = m[1]
				}
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// ErrStop makes Poll return at once with the condition's error.
var ErrStop = errors.New("stop polling")

// Poll calls cond every interval until it returns true, returns a non-nil error, or timeout
// passes. A condition error wrapping ErrStop, or any error on the last attempt, is returned.
func Poll(timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrStop) {
				return err
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, lastErr)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(interval):
		}
	}
}

// MustEnv returns the environment variable or an error naming it.
func MustEnv(names ...string) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			missing = append(missing, n)
		}
		out[n] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment not set: %s (run the suite through tests/e2e/run.sh)", strings.Join(missing, ", "))
	}
	return out, nil
}
