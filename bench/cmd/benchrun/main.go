// Command benchrun is `make bench`: it builds the echo servers of bench/
// (wsactor's daemon, the other Go WebSocket libraries, a plain TCP echo as
// the ceiling) and wsload, runs the main module's micro-benchmarks, then
// runs wsload against every server, scenario by scenario, interleaved (each
// round runs every server once, in an order rotated from round to round) and
// repeated, starting each server fresh for every run. It prints a table per
// scenario with medians, min and max, and the ratios to wsactor and to the
// TCP ceiling, and writes the same as Markdown and JSON, with an SVG chart,
// under results/.
//
//	cd bench && go run ./cmd/benchrun            # everything (make bench)
//	cd bench && go run ./cmd/benchrun -quick     # a subset in under a minute (make bench-quick)
//	cd bench && go run ./cmd/benchrun -servers tcp,gobwas-raw -scenarios echo-64c-64B -rounds 1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wsactor/wsactor/bench/internal/selfsigned"
)

// config is the command line.
type config struct {
	quick       bool
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	hold        time.Duration
	servers     []string
	scenarios   []string
	micro       bool
	microCount  int
	microTime   string
	results     string
	out         string
	build       bool
	gwsParallel bool
	wsactorPath string
	wsactorArgs []string
	// The certificate of the TLS scenarios, made by run.
	tlsCert, tlsKey string
	args            []string // as given, for the report

	// The fan-out scenarios' own run settings.
	fanoutRounds       int
	fanoutRoundsLong   int
	fanoutDuration     time.Duration
	fanoutWarmup       time.Duration
	fanoutWindow       int
	fanoutWriteTimeout time.Duration
	fanoutSample       time.Duration

	// The cross-daemon scenarios' rounds (their times are the fan-out
	// ones).
	crossRounds int
}

func parseFlags(args []string) (config, error) {
	var (
		c                            config
		servers, scenarios, wsaArgs  string
		micro                        string
		rounds                       int
		duration, warmup, hold       time.Duration
		durationSet, roundsSet, hSet bool
		warmupSet                    bool
	)
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "a subset in about a minute: echo 64 conns x 64 B, idle at 1000 conns, fan-out of 1 KiB to 500 members and across daemons to 300, 1 round of 2 s, no micro-benchmarks")
	fs.IntVar(&rounds, "rounds", 3, "rounds: every server runs once per round and scenario")
	fs.DurationVar(&duration, "duration", 5*time.Second, "measured time of each run")
	fs.DurationVar(&warmup, "warmup", time.Second, "load before each run's measurement")
	fs.DurationVar(&hold, "hold", 3*time.Second, "idle scenarios: how long the connections are held before the memory is read")
	fs.StringVar(&servers, "servers", "", "comma-separated servers to run (default: all): "+strings.Join(serverNames(), ","))
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenario ids to run (default: all of the mode): "+strings.Join(scenarioIDs(fullScenarios()), ",")+"; only when named: "+strings.Join(scenarioIDs(optInScenarios()), ","))
	fs.StringVar(&micro, "micro", "", "run the micro-benchmarks: true or false (default: true, false with -quick)")
	fs.IntVar(&c.microCount, "micro-count", 5, "go test -count for the micro-benchmarks")
	fs.StringVar(&c.microTime, "micro-benchtime", "", "go test -benchtime for the micro-benchmarks (default: go test's)")
	fs.StringVar(&c.results, "results", "results", "directory of the results")
	fs.StringVar(&c.out, "out", "", "base name of the result files (default: latest, or quick with -quick)")
	fs.BoolVar(&c.build, "build", true, "build the binaries first (false: use those in bin/)")
	fs.BoolVar(&c.gwsParallel, "gws-parallel", true, "run gws with ParallelEnabled, as its README's best practice does")
	fs.StringVar(&c.wsactorPath, "wsactor-path", "/", "path of wsechod's echo endpoint")
	fs.StringVar(&wsaArgs, "wsactor-args", "", "extra flags for wsechod, space-separated")
	fs.IntVar(&c.fanoutRounds, "fanout-rounds", 2, "fan-out scenarios of 2000 members: rounds (1 with -quick)")
	fs.IntVar(&c.fanoutRoundsLong, "fanout-rounds-long", 1, "the long fan-out scenarios (10000 members, silent members): rounds")
	fs.DurationVar(&c.fanoutDuration, "fanout-duration", 2*time.Second, "fan-out scenarios: measured time of each run (six times that with silent members)")
	fs.DurationVar(&c.fanoutWarmup, "fanout-warmup", 500*time.Millisecond, "fan-out scenarios: publishing before each run's measurement")
	fs.IntVar(&c.fanoutWindow, "fanout-window", 128, "fan-out scenarios: messages the publisher may be ahead of the slowest member that reads")
	fs.DurationVar(&c.fanoutWriteTimeout, "fanout-write-timeout", 2*time.Second, "fan-out scenarios: every server's write timeout for its members (-write-timeout), which cuts the silent ones (gws has none)")
	fs.DurationVar(&c.fanoutSample, "fanout-sample", 250*time.Millisecond, "fan-out scenarios: how often the server's stats are read during a run")
	fs.IntVar(&c.crossRounds, "cross-rounds", 3, "cross-daemon fan-out scenarios (one daemon, then three on NATS): rounds (1 with -quick)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fanoutRoundsSet, crossRoundsSet := false, false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "fanout-rounds":
			fanoutRoundsSet = true
		case "cross-rounds":
			crossRoundsSet = true
		case "duration":
			durationSet = true
		case "rounds":
			roundsSet = true
		case "hold":
			hSet = true
		case "warmup":
			warmupSet = true
		}
	})
	c.rounds, c.duration, c.warmup, c.hold = rounds, duration, warmup, hold
	if c.quick {
		if !roundsSet {
			c.rounds = 1
		}
		if !durationSet {
			c.duration = 2 * time.Second
		}
		if !warmupSet {
			c.warmup = 500 * time.Millisecond
		}
		if !hSet {
			// Long enough for wsactor's idle sessions to park their
			// readers (Options.ParkAfter, 1 s, checked once a second).
			c.hold = 2500 * time.Millisecond
		}
		if !fanoutRoundsSet {
			c.fanoutRounds = 1
		}
		if !crossRoundsSet {
			c.crossRounds = 1
		}
	}
	switch micro {
	case "":
		c.micro = !c.quick
	case "true", "1":
		c.micro = true
	case "false", "0":
		c.micro = false
	default:
		return c, fmt.Errorf("-micro %q: want true or false", micro)
	}
	if c.out == "" {
		c.out = "latest"
		if c.quick {
			c.out = "quick"
		}
	}
	c.servers = splitList(servers)
	for _, s := range c.servers {
		if serverByName(s) == nil {
			return c, fmt.Errorf("-servers: unknown server %q (have %s)", s, strings.Join(serverNames(), ", "))
		}
	}
	c.scenarios = splitList(scenarios)
	all := append(fullScenarios(), append(quickScenarios(), optInScenarios()...)...)
	for _, id := range c.scenarios {
		if scenarioByID(all, id) == nil {
			return c, fmt.Errorf("-scenarios: unknown scenario %q (have %s)", id, strings.Join(scenarioIDs(all), ", "))
		}
	}
	c.wsactorArgs = strings.Fields(wsaArgs)
	switch {
	case c.rounds < 1:
		return c, errors.New("-rounds: want at least 1")
	case c.duration <= 0:
		return c, errors.New("-duration: want more than 0")
	case c.warmup < 0 || c.hold < 0:
		return c, errors.New("-warmup and -hold: want 0 or more")
	case c.microCount < 1:
		return c, errors.New("-micro-count: want at least 1")
	case c.fanoutRounds < 1 || c.fanoutRoundsLong < 1 || c.crossRounds < 1:
		return c, errors.New("-fanout-rounds, -fanout-rounds-long and -cross-rounds: want at least 1")
	case c.fanoutDuration <= 0 || c.fanoutWarmup < 0 || c.fanoutWriteTimeout <= 0 || c.fanoutSample < 0:
		return c, errors.New("-fanout-duration and -fanout-write-timeout: want more than 0; -fanout-warmup and -fanout-sample: 0 or more")
	case c.fanoutWindow < 1:
		return c, errors.New("-fanout-window: want at least 1")
	}
	c.args = args
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	dirs, err := findDirs()
	if err != nil {
		return err
	}
	raiseFileLimit()
	resultsDir := cfg.results
	if !filepath.IsAbs(resultsDir) {
		resultsDir = filepath.Join(dirs.bench, resultsDir)
	}
	// The logs of the servers are those of this run only.
	if err := os.RemoveAll(filepath.Join(resultsDir, "logs")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(resultsDir, "logs"), 0o755); err != nil {
		return err
	}
	started := time.Now()
	loadStart := loadAvg()

	servers := selectedServers(cfg)
	tools, skipped := build(ctx, cfg, dirs, servers)
	if tools.wsload == "" {
		return errors.New("wsload did not build: nothing can be measured")
	}

	var micro *microResult
	if cfg.micro {
		micro = runMicro(ctx, cfg, dirs, resultsDir)
	}

	scenarios := selectedScenarios(cfg)
	for _, sc := range scenarios {
		if sc.tls {
			// One throwaway certificate for every TLS run (bin/ is ignored).
			cfg.tlsCert, cfg.tlsKey, err = selfsigned.WriteFiles(filepath.Join(dirs.bin, "tls"))
			if err != nil {
				return fmt.Errorf("TLS certificate: %w", err)
			}
			break
		}
	}
	var runnable []*server
	for _, s := range servers {
		if _, ok := skipped[s.name]; !ok {
			runnable = append(runnable, s)
		}
	}
	r := &runner{
		cfg:     cfg,
		dirs:    dirs,
		tools:   tools,
		logDir:  filepath.Join(resultsDir, "logs"),
		skipped: skipped,
	}
	rep := r.runAll(ctx, scenarios, runnable)
	rep.Started = started.UTC().Format(time.RFC3339)
	rep.Finished = time.Now().UTC().Format(time.RFC3339)
	rep.Machine = machineInfo(ctx, dirs)
	rep.Machine.LoadStart = loadStart
	rep.Command = commandLine(cfg)
	rep.Config = reportConfig(cfg)
	rep.Micro = micro
	rep.Servers = serverInfos(servers, cfg)
	for _, s := range servers {
		if why, ok := skipped[s.name]; ok {
			rep.Skipped = append(rep.Skipped, skip{Server: s.name, Reason: why})
		}
	}

	fmt.Println()
	writeText(os.Stdout, rep)
	base := filepath.Join(resultsDir, cfg.out)
	if err := writeFiles(base, rep); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s.md, %s.json, %s", base, base, svgFile(base))
	if micro != nil && micro.File != "" {
		fmt.Printf(", %s", filepath.Join(resultsDir, micro.File))
	}
	fmt.Println()
	return ctx.Err()
}

// commandLine is the command as a person would type it in the repository.
func commandLine(cfg config) string {
	s := "cd bench && go run ./cmd/benchrun"
	for _, a := range cfg.args {
		s += " " + a
	}
	return s
}
