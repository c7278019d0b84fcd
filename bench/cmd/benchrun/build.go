package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// dirs are the directories the run works in.
type dirs struct {
	bench string // the bench module
	repo  string // the main module, its parent
	bin   string // bench/bin
}

const benchModule = "module github.com/wsactor/wsactor/bench"

// findDirs finds the bench module from the working directory: it is either
// that directory or its bench/ subdirectory (or a parent of the working
// directory, for go run from deeper).
func findDirs() (dirs, error) {
	wd, err := os.Getwd()
	if err != nil {
		return dirs{}, err
	}
	isBench := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		return err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte(benchModule))
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, c := range []string{d, filepath.Join(d, "bench")} {
			if isBench(c) {
				return dirs{bench: c, repo: filepath.Dir(c), bin: filepath.Join(c, "bin")}, nil
			}
		}
		if filepath.Dir(d) == d {
			return dirs{}, errors.New("cannot find the bench module (run from the repository or bench/)")
		}
	}
}

// tools are the built binaries that are not servers.
type tools struct {
	wsload string
	natsd  string // the NATS server of the cross-daemon scenarios
}

// build builds wsload and the servers into bench/bin. A server that does
// not build is skipped with the reason; so is wsactor when cmd/wsechod does
// not exist yet.
func build(ctx context.Context, cfg config, d dirs, servers []*server) (tools, map[string]string) {
	skipped := map[string]string{}
	var t tools
	if err := os.MkdirAll(d.bin, 0o755); err != nil {
		skipped["*"] = err.Error()
		return t, skipped
	}
	type target struct {
		name, dir, pkg string
		srv            *server
		tool           *string // where a tool's binary goes in t
	}
	targets := []target{{name: "wsload", dir: d.repo, pkg: "./cmd/wsload", tool: &t.wsload}}
	for _, s := range servers {
		if s.daemons > 1 {
			targets = append(targets, target{name: "natsd", dir: d.bench, pkg: "./cmd/natsd", tool: &t.natsd})
			break
		}
	}
	// Servers built from one package (wsactor and the cross servers are
	// all wsechod) share one binary.
	built := map[string]string{} // dir and package -> binary, or "" when it failed
	for _, s := range servers {
		dir, pkg := d.bench, s.pkg
		if s.inRepo {
			dir = d.repo
		}
		// A package with a go.mod of its own (cmd/wsechod) is built in
		// its module.
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(pkg), "go.mod")); err == nil {
			dir, pkg = filepath.Join(dir, filepath.FromSlash(pkg)), "."
		}
		targets = append(targets, target{name: s.name, dir: dir, pkg: pkg, srv: s})
	}
	for _, tg := range targets {
		out := filepath.Join(d.bin, tg.name)
		key := tg.dir + "\x00" + tg.pkg
		if prev, ok := built[key]; ok && tg.srv != nil {
			if prev == "" {
				skipped[tg.name] = "its package did not build, or its binary is missing (see above)"
			}
			tg.srv.bin = prev
			continue
		}
		built[key] = ""
		if tg.srv != nil {
			tg.srv.bin = out
		}
		if !cfg.build {
			if _, err := os.Stat(out); err != nil {
				reason := fmt.Sprintf("no binary %s (run without -build=false)", out)
				if tg.srv == nil {
					progress("build %-14s missing: %s\n", tg.name, reason)
					continue
				}
				skipped[tg.name] = reason
				continue
			}
			built[key] = out
			if tg.tool != nil {
				*tg.tool = out
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(tg.dir, filepath.FromSlash(tg.pkg))); err != nil {
			reason := fmt.Sprintf("%s does not exist yet", strings.TrimPrefix(tg.pkg, "./"))
			progress("build %-14s skipped: %s\n", tg.name, reason)
			if tg.srv != nil {
				skipped[tg.name] = reason
			}
			continue
		}
		progress("build %-14s ", tg.name)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, tg.pkg)
		cmd.Dir = tg.dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			msg := firstLines(stderr.String(), 3)
			if msg == "" {
				msg = err.Error()
			}
			progress("FAILED, skipped: %s\n", msg)
			if tg.srv != nil {
				skipped[tg.name] = "does not build: " + msg
			}
			continue
		}
		progress("ok (%.1fs)\n", time.Since(start).Seconds())
		built[key] = out
		if tg.tool != nil {
			*tg.tool = out
		}
	}
	return t, skipped
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}

// raiseFileLimit raises the soft limit on open files to the hard limit. The
// children (servers, wsload) inherit it: 5000 idle connections need 5000
// descriptors in each of the server and wsload. Calling Setrlimit also
// stops os/exec from restoring the lower limit the process started with.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		progress("warning: cannot raise the open files limit (%d): %v\n", lim.Cur, err)
	}
	if lim.Cur < 12000 {
		progress("warning: open files limit %d; the 5000-connection scenario needs about 5100 per process\n", lim.Cur)
	}
}

// progress writes to stderr, where the progress of the run goes.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format, args...)
}
