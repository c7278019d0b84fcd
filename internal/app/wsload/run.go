package wsload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Errors that Run returns, with a result, when the run measured nothing.
var (
	ErrNoConnections   = errors.New("wsload: no connection could be opened")
	ErrNothingMeasured = errors.New("wsload: no message was measured")
	ErrNoStats         = errors.New("wsload: the stats endpoint did not answer")
)

// The phases of a run, in order. The coordinator moves through them; the
// connections read the phase once per read.
const (
	phaseWarmup    int32 = iota
	phaseMeasure         // sends from now on are measured
	phaseStop            // no new sends; senders wait for their echoes
	phaseDrainRecv       // broadcast: receivers wait for every delivery
	phaseAbort           // stop waiting: what is outstanding is lost
	phaseClose           // close every connection now
)

// Defaults of the bounds on the end of a run.
const (
	defaultDrainTimeout = 3 * time.Second
	defaultCloseWait    = 2 * time.Second
)

// runner is the state that the coordinator shares with the connections.
type runner struct {
	cfg      Config
	base     time.Time
	tcp      bool
	addr     string
	op       Op
	wsDialer ws.Dialer
	h2       *h2Pool // with Config.HTTP2
	conns    []*conn
	sender   *conn // broadcast: the connection that sends

	phase    atomic.Int32
	limited  bool
	budget   atomic.Int64 // measured messages left to send, when limited
	target   atomic.Int64 // broadcast: deliveries each receiver waits for
	drainedN atomic.Int64
	up       atomic.Int64
	dialErrs atomic.Int64

	dialed  sync.WaitGroup // every dial has ended
	roles   chan struct{}  // closed when sending has been set on every conn
	ready   sync.WaitGroup // every open conn has encoded its window
	start   chan struct{}  // closed when the load begins
	dialSem chan struct{}
	sources []net.Addr // Config.Sources

	// Storm.
	pingNow    atomic.Bool  // every connection pings once
	pongs      atomic.Int64 // pongs to those pings
	closeStart time.Time
	poke       chan struct{} // wakes the coordinator; never blocks a sender

	// Set by load for collect.
	loaded       bool
	measureStart int64
	stopAt       int64
	deliveries0  int64

	errMu    sync.Mutex
	firstErr error
	dialErr  error
}

// Run carries out the run that cfg describes and returns its result. It
// stops by itself: after the dials (each bounded by DialTimeout), Warmup and
// Duration or Count, and bounded waits for the last echoes and the closing
// handshakes. Canceling ctx ends the dials, the warm-up or the measurement
// early; the run then finishes as if its time were up.
//
// With a result, Run returns ErrNoConnections, ErrNothingMeasured or
// ErrNoStats when the run measured nothing; without one, a Config error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	addr, _ := cfg.target()
	r := &runner{
		cfg:     cfg,
		tcp:     cfg.Proto == ProtoTCP,
		addr:    addr,
		op:      OpBinary,
		roles:   make(chan struct{}),
		start:   make(chan struct{}),
		dialSem: make(chan struct{}, cfg.DialConcurrency),
		poke:    make(chan struct{}, 1),
	}
	if !cfg.Binary && !r.tcp {
		r.op = OpText
	}
	r.wsDialer = ws.Dialer{Timeout: cfg.DialTimeout}
	for _, a := range cfg.Sources {
		r.sources = append(r.sources, &net.TCPAddr{IP: net.ParseIP(a)})
	}
	if cfg.Insecure {
		r.wsDialer.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	if cfg.HTTP2 {
		r.h2 = newH2Pool(cfg)
		defer r.h2.close()
	}
	if cfg.drainTimeout == 0 {
		r.cfg.drainTimeout = defaultDrainTimeout
	}
	if cfg.closeWait == 0 {
		r.cfg.closeWait = defaultCloseWait
	}
	if cfg.Count > 0 {
		r.limited = true
		r.budget.Store(cfg.Count)
	}
	r.target.Store(math.MaxInt64)

	res := &Result{
		Label:      cfg.Label,
		Mode:       cfg.Mode,
		URL:        cfg.URL,
		URLs:       cfg.URLs,
		Proto:      cfg.Proto,
		Conns:      cfg.Conns,
		Inflight:   cfg.Inflight,
		Size:       cfg.Size,
		Binary:     cfg.Binary,
		CloseCodes: map[string]int64{},
	}
	if cfg.Mode == ModeFanout {
		return res, runFanout(ctx, cfg, res)
	}
	transport := &http.Transport{DisableKeepAlives: true}
	if cfg.Insecure {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // an https stats endpoint with the server's certificate
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	if cfg.StatsURL != "" {
		st, err := fetchStats(ctx, client, cfg.StatsURL)
		if err != nil {
			r.logf("wsload: before the run: %v", err)
		}
		res.ServerBefore = st
	}

	r.base = time.Now()
	r.conns = make([]*conn, cfg.Conns)
	for i := range r.conns {
		r.conns[i] = &conn{r: r, id: i}
	}
	r.dialed.Add(len(r.conns))
	var wg sync.WaitGroup
	for _, c := range r.conns {
		wg.Go(func() { c.run(ctx) })
	}
	stopProgress := r.startProgress()

	r.dialed.Wait()
	stormTime := time.Since(r.base)
	var err error
	switch {
	case r.up.Load() == 0:
		r.phase.Store(phaseClose)
		close(r.roles)
		close(r.start)
		err = ErrNoConnections
	case cfg.Mode == ModeIdle:
		r.assignRoles()
		err = r.idle(ctx, client, res)
	case cfg.Mode == ModeStorm:
		r.assignRoles()
		err = r.storm(ctx, client, res, stormTime)
	default:
		r.assignRoles()
		err = r.load(ctx, client, res)
	}
	wg.Wait()
	if res.Storm != nil && !r.closeStart.IsZero() {
		res.Storm.CloseS = time.Since(r.closeStart).Seconds()
	}
	stopProgress()
	r.collect(res)
	if err == nil && !cfg.Mode.holds() && res.Messages == 0 {
		err = ErrNothingMeasured
	}
	if n := r.dialErrs.Load(); n > 0 {
		r.logf("wsload: %d of %d dials failed; the first: %v", n, cfg.Conns, r.dialErr)
	}
	return res, err
}

// idle holds the connections, then measures the server's memory.
func (r *runner) idle(ctx context.Context, client *http.Client, res *Result) error {
	close(r.start)
	sleep(ctx, r.cfg.Hold)
	held := r.up.Load()
	res.Idle = &IdleResult{Conns: held}
	var err error
	if r.cfg.StatsURL != "" {
		// Read even after an interrupt: the request has its own timeout.
		after, ferr := fetchStats(context.WithoutCancel(ctx), client, r.cfg.StatsURL)
		if ferr != nil {
			r.logf("wsload: after the hold: %v", ferr)
		}
		res.Server = after
		if after == nil || res.ServerBefore == nil {
			err = ErrNoStats
		} else {
			b := res.ServerBefore
			res.Idle.RSSPerConnBytes = perConn(b.RSSBytes, after.RSSBytes, held)
			res.Idle.HeapPerConnBytes = perConn(b.HeapInuseBytes, after.HeapInuseBytes, held)
			res.Idle.StackPerConnBytes = perConn(b.StackInuseBytes, after.StackInuseBytes, held)
		}
	}
	r.setPhase(phaseClose)
	return err
}

// assignRoles chooses the connections that send, then lets every open
// connection encode its window, and waits until they all have: encoding
// large windows takes time that must not count as load.
func (r *runner) assignRoles() {
	for _, c := range r.conns {
		if c.nc == nil || r.cfg.Mode.holds() {
			continue
		}
		c.sending = true
		if r.cfg.Mode == ModeBroadcast {
			// Connection 0 sends, or the first one that opened.
			r.sender = c
			break
		}
	}
	r.ready.Add(int(r.up.Load()))
	close(r.roles)
	r.ready.Wait()
}

// load runs the echo and broadcast modes: warm-up, measurement, drain,
// stats, close. The figures are collected from the connections afterwards.
func (r *runner) load(ctx context.Context, client *http.Client, res *Result) error {
	sender := r.sender
	if r.cfg.Warmup > 0 {
		r.phase.Store(phaseWarmup)
	} else {
		r.phase.Store(phaseMeasure)
	}
	measureStart := r.now()
	close(r.start)
	if r.cfg.Warmup > 0 {
		sleep(ctx, r.cfg.Warmup)
		measureStart = r.now()
		r.phase.Store(phaseMeasure)
	}
	deliveries0 := r.delivered()

	t := time.NewTimer(r.cfg.Duration)
	defer t.Stop()
	sendersDone := r.allDrained
	if sender != nil {
		sendersDone = sender.drained.Load
	}
wait:
	for ctx.Err() == nil {
		select {
		case <-t.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-r.poke:
			if r.limited && r.budget.Load() == 0 || sendersDone() {
				break wait
			}
		}
	}
	stopAt := r.now()
	r.setPhase(phaseStop)
	if !r.waitFor(sendersDone) {
		r.setPhase(phaseAbort)
	} else if sender != nil {
		r.target.Store(sender.sentTotal.Load())
		r.setPhase(phaseDrainRecv)
		if !r.waitFor(r.allDrained) {
			r.setPhase(phaseAbort)
		}
	}
	r.waitFor(r.allDrained)

	if r.cfg.StatsURL != "" {
		st, err := fetchStats(context.WithoutCancel(ctx), client, r.cfg.StatsURL)
		if err != nil {
			r.logf("wsload: after the run: %v", err)
		}
		res.Server = st
	}
	r.setPhase(phaseClose)

	r.loaded = true
	r.measureStart, r.stopAt, r.deliveries0 = measureStart, stopAt, deliveries0
	return nil
}

// collect adds up what the connections counted. It runs after every
// connection goroutine has ended.
func (r *runner) collect(res *Result) {
	var (
		h        Hist
		msgs     int64
		recv     int64
		lastRecv int64
	)
	for _, c := range r.conns {
		res.Errors += c.errs.Load()
		if c.closeCode != 0 {
			res.CloseCodes[strconv.Itoa(c.closeCode)]++
		}
		if c.hist != nil {
			h.Merge(c.hist)
		}
		msgs += c.msgs
		recv += c.recvN
		lastRecv = max(lastRecv, c.lastRecv)
	}
	res.DialErrors = r.dialErrs.Load()
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	} else if r.dialErr != nil {
		res.FirstError = "dial: " + r.dialErr.Error()
	}
	if !r.loaded {
		return
	}
	// The measurement ends when sending stopped or, if later, with the last
	// echo of a measured message (in broadcast mode, the last delivery).
	end := max(r.stopAt, lastRecv)
	res.DurationS = float64(end-r.measureStart) / 1e9
	res.Messages = msgs
	res.LatencyUS = latencyOf(&h)
	if r.cfg.Mode == ModeBroadcast {
		res.Deliveries = recv - r.deliveries0
	}
	if res.DurationS <= 0 {
		return
	}
	res.MsgsPerS = float64(msgs) / res.DurationS
	bytes := 2 * msgs * int64(r.cfg.Size)
	if r.cfg.Mode == ModeBroadcast {
		res.DeliveriesPerS = float64(res.Deliveries) / res.DurationS
		bytes = (msgs + res.Deliveries) * int64(r.cfg.Size)
	}
	res.MBPerS = float64(bytes) / 1e6 / res.DurationS
}

// now returns the monotonic time since the run began.
func (r *runner) now() int64 { return int64(time.Since(r.base)) }

// wake pokes the coordinator.
func (r *runner) wake() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// setPhase moves the run to phase p and wakes every connection blocked in a
// read so that it looks at the phase. Aborting also interrupts writes.
func (r *runner) setPhase(p int32) {
	r.phase.Store(p)
	past := time.Unix(1, 0)
	for _, c := range r.conns {
		if c.nc == nil {
			continue
		}
		if p == phaseAbort {
			c.nc.SetDeadline(past)
		} else {
			c.nc.SetReadDeadline(past)
		}
	}
}

// waitFor waits up to the drain timeout for cond, rechecking it whenever a
// connection pokes the coordinator.
func (r *runner) waitFor(cond func() bool) bool {
	t := time.NewTimer(r.cfg.drainTimeout)
	defer t.Stop()
	for !cond() {
		select {
		case <-r.poke:
		case <-t.C:
			return cond()
		}
	}
	return true
}

func (r *runner) allDrained() bool { return r.drainedN.Load() == int64(len(r.conns)) }

// take reserves up to k messages of the Count budget.
func (r *runner) take(k int) int {
	for {
		b := r.budget.Load()
		if b <= 0 {
			return 0
		}
		n := min(b, int64(k))
		if r.budget.CompareAndSwap(b, b-n) {
			if b == n {
				r.wake()
			}
			return int(n)
		}
	}
}

// delivered returns the data messages received so far on all connections.
func (r *runner) delivered() int64 {
	var n int64
	for _, c := range r.conns {
		n += c.delivered.Load()
	}
	return n
}

func (r *runner) errors() int64 {
	var n int64
	for _, c := range r.conns {
		n += c.errs.Load()
	}
	return n
}

func (r *runner) noteErr(err error) {
	r.errMu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.errMu.Unlock()
}

func (r *runner) dialFailed(err error) {
	r.dialErrs.Add(1)
	r.errMu.Lock()
	if r.dialErr == nil {
		r.dialErr = err
	}
	r.errMu.Unlock()
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, format+"\n", args...)
	}
}

// startProgress prints the progress line every second until the returned
// function is called; that function waits for the printer to end.
func (r *runner) startProgress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prev, prevAt := r.delivered(), time.Now()
		for {
			select {
			case <-quit:
				fmt.Fprint(w, "\n")
				return
			case at := <-t.C:
				cur := r.delivered()
				rate := float64(cur-prev) / at.Sub(prevAt).Seconds()
				prev, prevAt = cur, at
				fmt.Fprintf(w, "\r%6.1fs %11.0f msgs/s %7d up %7d errors ",
					time.Since(r.base).Seconds(), rate, r.up.Load(), r.errors())
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
