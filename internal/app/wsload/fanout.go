package wsload

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/pool/pbytes"
	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// Fan-out mode (ModeFanout): one member publishes, the server delivers every
// message to every member, the publisher included, and the server is the
// limit. Every payload begins with a stamp: the message's sequence number
// and the time it was sent, so that a member sees what the server dropped
// (a gap in the sequence) and how long a delivery took.
//
// The publisher writes as fast as the server reads, but never more than
// Inflight messages ahead of the slowest member that reads: a server whose
// broadcast never pushes back (one that drops for slow members, or queues
// without a bound) is then measured on what it delivers, not on how much it
// drops or buffers, and a server whose broadcast blocks on a full member
// queue is never held up by the generator. Silent members never read a
// byte: the server's memory over time (its stats endpoint, sampled every
// Sample) and the reading members' deliveries show what the server does
// with them.
//
// The members may be spread over several servers (Config.URLs) that share
// one broadcast: daemons whose rooms span them. Besides each sampled
// member's latency, the run measures, for every message of the
// measurement, the time from its publication to its receipt by the last
// reader (LastLatencyUS): what a room's slowest member sees. The publisher
// arms a slot of a ring with the number of readers before it writes the
// message; each reader counts it down, and the one that takes it to zero
// records the latency. The ring needs no more slots than the window, since
// the publisher is never more than Inflight messages ahead of the slowest
// reader: a slot is armed again only once every reader is past its last
// message.

const (
	// fanoutStamp is the size of the stamp that begins every fan-out
	// payload: the sequence number and the send time (nanoseconds since
	// the run began), 8 bytes each, big-endian.
	fanoutStamp = 16
	// fanoutReadBufSize is a reading member's read buffer: thousands of
	// members each hold one.
	fanoutReadBufSize = 16 << 10
	// fanoutLatencyEvery: one member in this many (and the publisher)
	// records delivery latencies; a histogram is 24 KiB, and 10000 of them
	// would cost more than the members' buffers.
	fanoutLatencyEvery = 16
	// fanoutRecheck bounds the publisher's wait for a poke: it looks again
	// at the members' progress at least this often.
	fanoutRecheck = 20 * time.Millisecond
	// fanoutProbe is the pace of the probes that the publisher sends until
	// every reader has heard one: a server may make a connection a member
	// some time after its handshake.
	fanoutProbe = 5 * time.Millisecond
)

// The phases of a fan-out run, in order.
const (
	fanJoin    int32 = iota // probes until every reader hears one
	fanWarmup               // publishing, not measured
	fanMeasure              // publishing, measured
	fanStop                 // the publisher stops; the readers drain
	fanClose                // close every member
)

var (
	errFanoutOrder   = errors.New("fan-out message out of order or repeated")
	errFanoutBad     = errors.New("fan-out message of another opcode or length than was published")
	errFanoutMissing = errors.New("fan-out messages missing: not delivered by the end of the drain")
)

// FanoutResult is what a fan-out run measured. Messages count once per
// member that reads; the silent members are not counted.
type FanoutResult struct {
	Members int `json:"members"` // members open at the start, the publisher included
	Readers int `json:"readers"` // of which read (the publisher reads its own copies) and heard a probe
	Silent  int `json:"silent"`  // of which never read
	// Unjoined counts the members that read but never heard a probe
	// before the join timeout (DialTimeout): the server did not make them
	// members. They are left out of the pace and of the figures.
	Unjoined int `json:"unjoined,omitempty"`
	Window   int `json:"window"` // the publisher's lead over the slowest reader, in messages
	// Rate is the publisher's pace in messages per second, 0 when it
	// publishes as fast as the window allows.
	Rate float64 `json:"rate,omitempty"`

	// Published is the number of messages the publisher sent during the
	// measurement; Delivered, the messages the readers received during it
	// (whenever they were published): DeliveriesPerS is Delivered over the
	// measured time.
	Published int64 `json:"published"`
	Delivered int64 `json:"delivered"`
	// Over the whole run, each reader from the first message it received
	// (a probe) to the last published, after the drain: Expected is what
	// the readers should have received, Received what they did, and
	// DeliveryRatio the one over the other. Gaps counts the messages a
	// reader never got although a later one came (the server dropped
	// them); Missing, every message not received by the end of the drain,
	// gaps included (the rest were still on their way). A reader that the
	// server cut (ReadersCut) expects nothing after its end.
	Expected      int64   `json:"expected"`
	Received      int64   `json:"received"`
	DeliveryRatio float64 `json:"delivery_ratio"`
	Gaps          int64   `json:"gaps"`
	Missing       int64   `json:"missing"`
	ReadersCut    int64   `json:"readers_cut"`
	// LastLatencyUS is, over the messages of the measurement that reached
	// every reader, the time from publishing a message to its receipt by
	// the last reader; LastMessages counts those messages (a message
	// dropped for one reader, or published after a reader was cut, has no
	// last receipt).
	LastLatencyUS *Latency `json:"last_latency_us,omitempty"`
	LastMessages  int64    `json:"last_messages"`
	// Endpoints is the number of servers the members were spread over.
	Endpoints int `json:"endpoints"`
	// ServerDropped is the server's own count of the broadcasts it dropped
	// during the run, when its stats endpoint reports one.
	ServerDropped *int64 `json:"server_dropped,omitempty"`

	// Samples are the server's stats over time, T seconds after the
	// publisher started (the measurement runs from MeasureFromS to
	// MeasureToS), to the end of the drain, without a forced garbage
	// collection. RSSStart is the first sample's RSS, RSSPeak the largest,
	// RSSEnd the last.
	MeasureFromS float64       `json:"measure_from_s"`
	MeasureToS   float64       `json:"measure_to_s"`
	Samples      []StatsSample `json:"samples,omitempty"`
	RSSStart     *int64        `json:"rss_start_bytes,omitempty"`
	RSSPeak      *int64        `json:"rss_peak_bytes,omitempty"`
	RSSEnd       *int64        `json:"rss_end_bytes,omitempty"`
}

// StatsSample is one reading of the server's stats endpoint during a run.
type StatsSample struct {
	T float64 `json:"t"` // seconds since the publisher started
	ServerStats
}

// fanRun is the state the coordinator shares with the members and the
// publisher.
type fanRun struct {
	cfg    Config
	base   time.Time
	tcp    bool
	urls   []string // member i dials urls[i%len(urls)]
	addrs  []string // their host:port, for tcp
	op     Op
	dialer ws.Dialer

	// ring tracks the receipts of the measured messages in flight, slot
	// seq&ringMask for message seq; lastHist holds the latencies to the
	// last reader.
	ring     []lastSlot
	ringMask int64
	lastMu   sync.Mutex
	lastHist Hist
	lastN    int64

	members []*member
	readers []*member // the members that read, set before start is closed
	paced   []*member // of which heard a probe: set by the publisher before joined is closed
	pub     *member

	phase      atomic.Int32
	measureSeq atomic.Int64 // first sequence number sent in the measurement (latencies, Count); MaxInt64 before
	endSeq     atomic.Int64 // the sequence number after the last published; MaxInt64 while publishing
	pubSeq     atomic.Int64 // the next sequence number the publisher sends
	need       atomic.Int64 // the progress every reader must reach for the publisher to go on
	waiting    atomic.Bool  // the publisher waits for need
	budgetOut  atomic.Bool  // the publisher stopped: Count messages measured

	poke      chan struct{} // wakes the publisher
	drain     chan struct{} // wakes the coordinator
	start     chan struct{} // closed when the publishing begins
	joined    chan struct{} // closed by the publisher once every reader heard a probe
	closed    chan struct{} // closed at fanClose
	closeOnce sync.Once
	dialSem   chan struct{}
	dialed    sync.WaitGroup

	// Set by load for collect: the sequence number after the last
	// published.
	finalSeq int64

	dialErrs atomic.Int64
	errMu    sync.Mutex
	firstErr error
	dialErr  error
}

// lastSlot counts down the readers that have still to receive message seq.
type lastSlot struct {
	seq  atomic.Int64
	left atomic.Int64
}

// member is one connection of a fan-out run. Its goroutine owns everything
// but the atomics; the publisher's goroutine writes to the publisher's
// connection too (net.Conn writes are whole and safe for concurrent use).
type member struct {
	f      *fanRun
	id     int
	nc     net.Conn
	silent bool
	mask   [4]byte

	ps     codec.Parser
	tcpHdr [tcpHeaderLen]byte
	tcpHn  int
	tcpRem int64
	rbuf   []byte
	out    []byte

	// The message being received.
	inMsg  bool
	msgOp  Op
	msgLen int64
	stamp  [fanoutStamp]byte
	ctl    [maxControlPayload]byte
	ctlLen int

	nextSeq   int64 // the sequence number expected next
	first     int64 // the sequence number of the first message received
	recv      int64 // data messages received
	gaps      int64
	hist      *Hist
	closing   bool
	closeSent bool
	closeRecv bool
	closeCode int
	ended     bool // the connection failed or the server closed it

	next      atomic.Int64 // nextSeq, published after every read; MaxInt64 once ended
	inPace    atomic.Bool  // heard a probe in time: counted in the ring's slots
	delivered atomic.Int64 // recv, published after every read
	errs      atomic.Int64
}

// runFanout carries out a ModeFanout run: dial, publish (warm-up, then
// measurement), drain, close.
func runFanout(ctx context.Context, cfg Config, res *Result) error {
	f := &fanRun{
		cfg:     cfg,
		tcp:     cfg.Proto == ProtoTCP,
		urls:    cfg.endpoints(),
		op:      OpBinary,
		poke:    make(chan struct{}, 1),
		drain:   make(chan struct{}, 1),
		start:   make(chan struct{}),
		joined:  make(chan struct{}),
		closed:  make(chan struct{}),
		dialSem: make(chan struct{}, cfg.DialConcurrency),
		dialer:  ws.Dialer{Timeout: cfg.DialTimeout},
	}
	for _, u := range f.urls {
		addr, _ := targetOf(u, cfg.Proto)
		f.addrs = append(f.addrs, addr)
	}
	ring := 64
	for ring < cfg.Inflight {
		ring <<= 1
	}
	f.ring, f.ringMask = make([]lastSlot, ring), int64(ring-1)
	for i := range f.ring {
		f.ring[i].seq.Store(-1)
	}
	if !cfg.Binary && !f.tcp {
		f.op = OpText
	}
	if cfg.Insecure {
		f.dialer.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	if f.cfg.drainTimeout == 0 {
		f.cfg.drainTimeout = defaultDrainTimeout
	}
	if f.cfg.closeWait == 0 {
		f.cfg.closeWait = defaultCloseWait
	}
	f.measureSeq.Store(math.MaxInt64)
	f.endSeq.Store(math.MaxInt64)

	transport := &http.Transport{DisableKeepAlives: true}
	if cfg.Insecure {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // an https stats endpoint with the server's certificate
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	if cfg.StatsURL != "" {
		st, err := fetchStats(ctx, client, cfg.StatsURL)
		if err != nil {
			f.logf("wsload: before the run: %v", err)
		}
		res.ServerBefore = st
	}

	f.base = time.Now()
	f.members = make([]*member, cfg.Conns)
	for i := range f.members {
		// The last Silent members never read; the publisher is the first
		// member that opens.
		f.members[i] = &member{f: f, id: i, silent: i >= cfg.Conns-cfg.Silent}
	}
	f.dialed.Add(len(f.members))
	var wg sync.WaitGroup
	for _, m := range f.members {
		wg.Go(func() { m.run(ctx) })
	}
	f.dialed.Wait()

	var (
		fr  FanoutResult
		err error
	)
	for _, m := range f.members {
		if m.nc == nil {
			continue
		}
		fr.Members++
		if m.silent {
			fr.Silent++
			continue
		}
		if f.pub == nil {
			f.pub = m
		}
		f.readers = append(f.readers, m)
	}
	fr.Window = cfg.Inflight
	fr.Rate = cfg.Rate
	fr.Endpoints = len(f.urls)
	res.Fanout = &fr
	if f.pub == nil {
		f.setPhase(fanClose)
		close(f.start)
		wg.Wait()
		if fr.Members == 0 {
			err = ErrNoConnections
		} else {
			err = errors.New("wsload: no member that reads could be opened")
		}
	} else {
		err = f.load(ctx, client, res, &fr)
		wg.Wait()
		f.collect(res, &fr)
		if err == nil && fr.Published == 0 && fr.Delivered == 0 {
			err = ErrNothingMeasured
		}
	}
	res.DialErrors = f.dialErrs.Load()
	if f.firstErr != nil {
		res.FirstError = f.firstErr.Error()
	} else if f.dialErr != nil {
		res.FirstError = "dial: " + f.dialErr.Error()
	}
	if n := f.dialErrs.Load(); n > 0 {
		f.logf("wsload: %d of %d dials failed; the first: %v", n, cfg.Conns, f.dialErr)
	}
	return err
}

// load publishes, measures, drains and samples the server's stats; it
// leaves the run in fanClose.
func (f *fanRun) load(ctx context.Context, client *http.Client, res *Result, fr *FanoutResult) error {
	var (
		samplerWG sync.WaitGroup
		samples   []StatsSample
		stopSamp  = make(chan struct{})
	)
	t0 := time.Now()
	if f.cfg.StatsURL != "" && f.cfg.Sample > 0 {
		samplerWG.Go(func() {
			samples = f.sample(ctx, client, t0, stopSamp)
		})
	}
	var pubWG sync.WaitGroup
	pubWG.Go(f.publish)
	f.phase.Store(fanJoin)
	close(f.start)
	select {
	case <-f.joined:
	case <-ctx.Done():
		f.phase.Store(fanStop) // the publisher leaves the join at its next probe
		<-f.joined
	}
	fr.Readers = len(f.paced)
	fr.Unjoined = len(f.readers) - len(f.paced)
	if fr.Unjoined > 0 {
		f.noteErr(fmt.Errorf("%d members that read heard no probe within %v: left out", fr.Unjoined, f.cfg.DialTimeout))
	}
	if f.cfg.Warmup > 0 {
		f.phase.Store(fanWarmup)
	} else {
		f.phase.Store(fanMeasure)
	}
	f.wakePublisher()
	if f.cfg.Warmup > 0 {
		sleep(ctx, f.cfg.Warmup)
		f.phase.Store(fanMeasure) // the publisher sets measureSeq
		f.wakePublisher()
	}
	measureStart, d0, p0 := time.Now(), f.delivered(), f.pubSeq.Load()

	t := time.NewTimer(f.cfg.Duration)
	defer t.Stop()
wait:
	for !f.budgetOut.Load() {
		select {
		case <-t.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-f.drain:
		}
	}
	stopAt, d1, p1 := time.Now(), f.delivered(), f.pubSeq.Load()
	f.phase.Store(fanStop)
	f.wakePublisher()
	// The publisher may be blocked in a write to a server that stopped
	// reading it: it has the drain timeout to finish, then its write is
	// interrupted.
	pubDone := make(chan struct{})
	go func() { pubWG.Wait(); close(pubDone) }()
	select {
	case <-pubDone:
	case <-time.After(f.cfg.drainTimeout):
		f.pub.nc.SetWriteDeadline(time.Unix(1, 0))
		<-pubDone
	}
	endSeq := f.pubSeq.Load()
	f.endSeq.Store(endSeq)
	f.waitDrained(endSeq) // what has not come by its end is missing

	close(stopSamp)
	samplerWG.Wait()
	if f.cfg.StatsURL != "" {
		st, err := fetchStats(context.WithoutCancel(ctx), client, f.cfg.StatsURL)
		if err != nil {
			f.logf("wsload: after the run: %v", err)
		}
		res.Server = st
	}
	f.setPhase(fanClose)

	fr.MeasureFromS = measureStart.Sub(t0).Seconds()
	fr.MeasureToS = stopAt.Sub(t0).Seconds()
	fr.Samples = samples
	for i := range samples {
		s := samples[i].RSSBytes
		if s == nil {
			continue
		}
		if fr.RSSStart == nil {
			fr.RSSStart = s
		}
		if fr.RSSPeak == nil || *s > *fr.RSSPeak {
			fr.RSSPeak = s
		}
		fr.RSSEnd = s
	}
	var dropBefore *int64
	if res.ServerBefore != nil {
		dropBefore = res.ServerBefore.Dropped
	}
	if res.Server != nil && res.Server.Dropped != nil && dropBefore != nil {
		d := *res.Server.Dropped - *dropBefore
		fr.ServerDropped = &d
	}
	// Published counts from the first message the publisher sent in the
	// measurement (measureSeq, which a Count limit counts from too).
	if ms := f.measureSeq.Load(); ms <= p1 {
		p0 = ms
	}
	fr.Published, fr.Delivered = p1-p0, d1-d0
	f.finalSeq = endSeq
	window := stopAt.Sub(measureStart).Seconds()
	res.DurationS = window
	res.Messages = fr.Published
	res.Deliveries = fr.Delivered
	if window > 0 {
		res.MsgsPerS = float64(fr.Published) / window
		res.DeliveriesPerS = float64(fr.Delivered) / window
		res.MBPerS = float64((fr.Published+fr.Delivered)*int64(f.cfg.Size)) / 1e6 / window
	}
	return nil
}

// delivered returns the messages the paced readers have received so far.
func (f *fanRun) delivered() int64 {
	var n int64
	for _, m := range f.paced {
		n += m.delivered.Load()
	}
	return n
}

// sample reads the stats endpoint every Sample until stop is closed, and
// once more then.
func (f *fanRun) sample(ctx context.Context, client *http.Client, t0 time.Time, stop <-chan struct{}) []StatsSample {
	var out []StatsSample
	take := func() {
		st, err := fetchStatsGC(context.WithoutCancel(ctx), client, f.cfg.StatsURL, false)
		if err != nil || st == nil {
			return
		}
		out = append(out, StatsSample{T: time.Since(t0).Seconds(), ServerStats: *st})
	}
	tick := time.NewTicker(f.cfg.Sample)
	defer tick.Stop()
	take()
	for {
		select {
		case <-tick.C:
			take()
		case <-stop:
			take()
			return out
		}
	}
}

// waitDrained waits, up to the drain timeout, until every reader has
// received (or skipped) every message up to endSeq or has ended. The
// readers poke the coordinator as they get there; the scan resumes where it
// stopped, since a reader's progress only grows.
func (f *fanRun) waitDrained(endSeq int64) bool {
	t := time.NewTimer(f.cfg.drainTimeout)
	defer t.Stop()
	i := 0
	for {
		for i < len(f.paced) && f.paced[i].next.Load() >= endSeq {
			i++
		}
		if i == len(f.paced) {
			return true
		}
		select {
		case <-f.drain:
		case <-t.C:
			return false
		}
	}
}

// publish is the publisher's goroutine: it sends stamped messages, as many
// at once as the slowest reader allows, until the run stops.
func (f *fanRun) publish() {
	<-f.start
	w := int64(f.cfg.Inflight)
	step := max(w/4, 1)
	limited := f.cfg.Count > 0
	payload := fanoutPayload(f.cfg)
	var (
		buf     []byte
		seq     int64
		scan    fanScan
		recheck = time.NewTimer(time.Hour)
	)
	recheck.Stop()
	defer recheck.Stop()
	if !f.join(&seq, payload) {
		return
	}
	// With a Rate, message paceBase+i is due i/Rate after paceStart.
	paceStart, paceBase := time.Now(), seq
	for f.phase.Load() < fanStop {
		if f.measureSeq.Load() == math.MaxInt64 && f.phase.Load() >= fanMeasure {
			// The first message sent from now on is the first measured:
			// stored before it is written, so that no member can get it
			// before knowing it counts.
			f.measureSeq.Store(seq)
		}
		k := int64(0)
		// Sending k more keeps the lead within w when every reader
		// expects at least seq+k+step-w next.
		for k+step <= w && scan.reached(f.paced, seq+k+step-w) {
			k += step
		}
		if rate := f.cfg.Rate; rate > 0 && k > 0 {
			due := paceBase + int64(time.Since(paceStart).Seconds()*rate) + 1
			if k = min(k, due-seq); k <= 0 {
				next := paceStart.Add(time.Duration(float64(seq-paceBase) / rate * float64(time.Second)))
				recheck.Reset(min(time.Until(next), fanoutRecheck))
				<-recheck.C
				continue
			}
		}
		if limited {
			if ms := f.measureSeq.Load(); ms != math.MaxInt64 {
				left := f.cfg.Count - (seq - ms)
				if left <= 0 {
					f.budgetOut.Store(true)
					f.wakeCoordinator()
					return
				}
				k = min(k, left)
			}
		}
		if k == 0 {
			f.need.Store(seq + step - w)
			f.waiting.Store(true)
			if !scan.reached(f.paced, seq+step-w) {
				recheck.Reset(fanoutRecheck)
				select {
				case <-f.poke:
				case <-recheck.C:
				}
				recheck.Stop()
			}
			f.waiting.Store(false)
			continue
		}
		var ok bool
		buf, ok = f.send(buf, payload, &seq, k)
		if !ok {
			return
		}
	}
}

// send writes k stamped messages from *seq on, in one write, and advances
// *seq. It reports false when the write failed.
func (f *fanRun) send(buf, payload []byte, seq *int64, k int64) ([]byte, bool) {
	p := f.pub
	buf = buf[:0]
	now := f.now()
	if ms := f.measureSeq.Load(); ms != math.MaxInt64 {
		// Armed before the write: no reader can receive a message before
		// its slot counts it.
		n := int64(len(f.paced))
		for i := range k {
			if s := *seq + i; s >= ms {
				sl := &f.ring[s&f.ringMask]
				sl.left.Store(n)
				sl.seq.Store(s)
			}
		}
	}
	for i := range k {
		binary.BigEndian.PutUint64(payload[0:], uint64(*seq+i))
		binary.BigEndian.PutUint64(payload[8:], uint64(now))
		if f.tcp {
			buf = appendTCPFrame(buf, payload)
		} else {
			buf = appendClientFrame(buf, f.op, payload, p.mask)
		}
	}
	n, err := p.nc.Write(buf)
	if err != nil {
		// The frames written whole were published; a partial one never
		// makes a message.
		*seq += int64(n / (len(buf) / int(k)))
		f.pubSeq.Store(*seq)
		if f.phase.Load() < fanStop {
			p.errs.Add(1)
			f.noteErr(fmt.Errorf("publish: %w", err))
		}
		return buf, false
	}
	*seq += k
	f.pubSeq.Store(*seq)
	return buf, true
}

// join sends probes until every reader has heard one, or the join timeout
// (DialTimeout) passes; it then sets paced to the readers that heard one and
// closes joined. A probe goes once every reader that heard one has heard the
// last, and fanoutProbe after it, so that a slow server is never flooded. It
// reports false when the run must stop: a failed write, or the coordinator
// gave up.
func (f *fanRun) join(seq *int64, payload []byte) bool {
	defer close(f.joined)
	deadline := time.Now().Add(f.cfg.DialTimeout)
	tick := time.NewTicker(fanoutProbe)
	defer tick.Stop()
	var buf []byte
	for f.phase.Load() == fanJoin && time.Now().Before(deadline) {
		all, caughtUp := true, true
		for _, m := range f.readers {
			switch n := m.next.Load(); {
			case n == 0:
				all = false
			case n < *seq:
				caughtUp = false
			}
		}
		if all && *seq > 0 {
			break
		}
		if caughtUp {
			var ok bool
			if buf, ok = f.send(buf, payload, seq, 1); !ok {
				f.paced = f.readers
				return false
			}
		}
		<-tick.C
	}
	for _, m := range f.readers {
		if m.next.Load() > 0 {
			f.paced = append(f.paced, m)
			m.inPace.Store(true)
		}
	}
	return f.phase.Load() < fanStop
}

// fanScan answers whether every reader expects at least need next, resuming
// its scan where it stopped for the same need.
type fanScan struct {
	need int64
	i    int
}

func (s *fanScan) reached(readers []*member, need int64) bool {
	if need <= 0 {
		return true
	}
	if need != s.need {
		s.need, s.i = need, 0
	}
	for s.i < len(readers) && readers[s.i].next.Load() >= need {
		s.i++
	}
	return s.i == len(readers)
}

// fanoutPayload returns the payload the publisher stamps and sends: its
// bytes after the stamp are fixed (ASCII for text messages).
func fanoutPayload(cfg Config) []byte {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	p := make([]byte, cfg.Size)
	for i := range p {
		p[i] = alnum[i%len(alnum)]
	}
	return p
}

func (f *fanRun) wakePublisher() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

func (f *fanRun) wakeCoordinator() {
	select {
	case f.drain <- struct{}{}:
	default:
	}
}

// now returns the monotonic time since the run began.
func (f *fanRun) now() int64 { return int64(time.Since(f.base)) }

// setPhase moves the run to p and wakes every member that waits for it.
func (f *fanRun) setPhase(p int32) {
	f.phase.Store(p)
	if p >= fanClose {
		f.closeOnce.Do(func() { close(f.closed) })
	}
	past := time.Unix(1, 0)
	for _, m := range f.readers {
		m.nc.SetReadDeadline(past)
	}
}

func (f *fanRun) noteErr(err error) {
	f.errMu.Lock()
	if f.firstErr == nil {
		f.firstErr = err
	}
	f.errMu.Unlock()
}

func (f *fanRun) logf(format string, args ...any) {
	if f.cfg.Log != nil {
		fmt.Fprintf(f.cfg.Log, format+"\n", args...)
	}
}

// run is the member's goroutine: dial, then read until the close (a
// silent member waits without reading), then close.
func (m *member) run(ctx context.Context) {
	f := m.f
	initial, err := m.dial(ctx)
	if err != nil {
		f.dialErrs.Add(1)
		f.errMu.Lock()
		if f.dialErr == nil {
			f.dialErr = err
		}
		f.errMu.Unlock()
		f.dialed.Done()
		return
	}
	mr := rand.Uint32()
	m.mask = [4]byte{byte(mr), byte(mr >> 8), byte(mr >> 16), byte(mr >> 24)}
	f.dialed.Done()
	<-f.start
	if m.silent {
		// Its socket fills with the server's frames; a closing handshake
		// would mean reading them, so it just closes.
		<-f.closed
		m.nc.Close()
		return
	}
	m.ps.Decoder = codec.Decoder{Role: codec.Client, MaxMessage: -1}
	if m.id%fanoutLatencyEvery == 0 || m == f.pub {
		m.hist = new(Hist)
	}
	m.rbuf = pbytes.GetLen(fanoutReadBufSize)
	defer func() {
		pbytes.Put(m.rbuf)
		m.rbuf = nil
	}()
	if m.loop(initial) {
		m.shutdown()
	} else {
		m.nc.Close()
	}
}

// dial is conn.dial for a member.
func (m *member) dial(ctx context.Context) ([]byte, error) {
	f := m.f
	if err := dialTurn(ctx, &f.cfg, m.id, f.base, f.dialSem); err != nil {
		return nil, err
	}
	defer func() { <-f.dialSem }()
	if f.tcp {
		d := net.Dialer{Timeout: f.cfg.DialTimeout}
		nc, err := d.DialContext(ctx, "tcp", f.addrs[m.id%len(f.addrs)])
		if err != nil {
			return nil, err
		}
		m.nc = nc
		return nil, nil
	}
	nc, br, _, err := f.dialer.Dial(ctx, f.urls[m.id%len(f.urls)])
	if err != nil {
		return nil, err
	}
	m.nc = nc
	if br == nil {
		return nil, nil
	}
	b, _ := br.Peek(br.Buffered())
	initial := bytes.Clone(b)
	ws.PutReader(br)
	return initial, nil
}

// loop reads until the close phase or the end of the connection. It
// reports whether the closing handshake is still to do.
func (m *member) loop(initial []byte) bool {
	f := m.f
	measureSeq := f.measureSeq.Load()
	if len(initial) > 0 && !m.consume(initial, f.now(), measureSeq) {
		return !m.ended
	}
	for {
		if f.phase.Load() >= fanClose {
			return true
		}
		n, err := m.nc.Read(m.rbuf)
		if n > 0 {
			if !m.consume(m.rbuf[:n], f.now(), f.measureSeq.Load()) {
				return !m.ended
			}
			if len(m.out) > 0 {
				if _, werr := m.nc.Write(m.out); werr != nil {
					m.fail(werr)
					return false
				}
				m.out = m.out[:0]
			}
		}
		if err != nil {
			if isTimeout(err) {
				m.nc.SetReadDeadline(time.Time{})
				continue
			}
			m.fail(err)
			return false
		}
	}
}

// fail records a connection that failed; the reader stops counting in the
// publisher's pace.
func (m *member) fail(err error) {
	if m.f.phase.Load() < fanClose {
		m.errs.Add(1)
		m.f.noteErr(err)
	}
	m.end()
}

// end takes the member out of the publisher's pace and the drain.
func (m *member) end() {
	if !m.ended {
		m.ended = true
		if m.closeCode == 0 {
			m.closeCode = closeAbnormal
		}
	}
	m.next.Store(math.MaxInt64)
	m.f.wakePublisher()
	m.f.wakeCoordinator()
}

// consume parses p, which arrived at now, publishes the member's progress
// and pokes whoever waits for it. It reports false when the connection must
// close.
func (m *member) consume(p []byte, now, measureSeq int64) bool {
	ok := m.parse(p, now, measureSeq)
	if !ok {
		return false
	}
	f := m.f
	m.next.Store(m.nextSeq)
	m.delivered.Store(m.recv)
	if f.waiting.Load() && m.nextSeq >= f.need.Load() {
		f.wakePublisher()
	}
	if m.nextSeq >= f.endSeq.Load() {
		f.wakeCoordinator()
	}
	return true
}

func (m *member) parse(p []byte, now, measureSeq int64) bool {
	if m.f.tcp {
		return m.parseTCP(p, now, measureSeq)
	}
	for len(p) > 0 {
		ch, n, ok, err := m.ps.Next(p)
		p = p[n:]
		if err != nil {
			m.errs.Add(1)
			m.f.noteErr(fmt.Errorf("server broke the protocol: %w", err))
			code := int(ws.StatusProtocolError)
			var pe *codec.ProtocolError
			if errors.As(err, &pe) {
				code = int(pe.Code)
			}
			m.closeWith(code)
			m.end()
			return false
		}
		if !ok {
			continue
		}
		op := Op(ch.Op)
		if ch.Op.IsControl() {
			if !m.control(op, ch.Payload, ch.First, ch.Last) {
				return false
			}
			continue
		}
		if ch.First && op != OpContinuation {
			m.inMsg, m.msgOp, m.msgLen = true, op, 0
		}
		m.take(ch.Payload)
		if ch.Last && ch.Fin {
			m.message(now, measureSeq)
		}
	}
	return true
}

// parseTCP parses length-prefixed frames: each is one message.
func (m *member) parseTCP(p []byte, now, measureSeq int64) bool {
	for len(p) > 0 {
		if m.tcpRem == 0 && !m.inMsg {
			k := copy(m.tcpHdr[m.tcpHn:], p)
			p = p[k:]
			if m.tcpHn += k; m.tcpHn < tcpHeaderLen {
				return true
			}
			m.tcpHn = 0
			m.tcpRem = int64(binary.BigEndian.Uint32(m.tcpHdr[:]))
			m.inMsg, m.msgOp, m.msgLen = true, m.f.op, 0
		}
		k := int(min(int64(len(p)), m.tcpRem))
		m.take(p[:k])
		p = p[k:]
		if m.tcpRem -= int64(k); m.tcpRem == 0 {
			m.message(now, measureSeq)
		}
	}
	return true
}

// take adds a piece of the current message's payload: its stamp is kept.
func (m *member) take(b []byte) {
	if m.msgLen < fanoutStamp {
		copy(m.stamp[m.msgLen:], b)
	}
	m.msgLen += int64(len(b))
}

// message accounts for a whole data message.
func (m *member) message(now, measureSeq int64) {
	m.inMsg = false
	if m.closing {
		return
	}
	f := m.f
	if m.msgOp != f.op || m.msgLen != int64(f.cfg.Size) {
		m.errs.Add(1)
		f.noteErr(errFanoutBad)
		return
	}
	seq := int64(binary.BigEndian.Uint64(m.stamp[0:]))
	if m.recv == 0 {
		// The member joined here: what came before was not for it.
		m.first, m.nextSeq = seq, seq
	}
	if seq < m.nextSeq {
		m.errs.Add(1)
		f.noteErr(errFanoutOrder)
		return
	}
	m.gaps += seq - m.nextSeq
	m.nextSeq = seq + 1
	m.recv++
	if seq < measureSeq {
		return
	}
	sent := int64(binary.BigEndian.Uint64(m.stamp[8:]))
	if m.hist != nil {
		m.hist.Record(time.Duration(now - sent))
	}
	// A member that joined too late is not among those a slot counts.
	if sl := &f.ring[seq&f.ringMask]; m.inPace.Load() && sl.seq.Load() == seq && sl.left.Add(-1) == 0 {
		f.lastMu.Lock()
		f.lastHist.Record(time.Duration(now - sent))
		f.lastN++
		f.lastMu.Unlock()
	}
}

// control handles a piece of a control frame. It reports false when the
// server closed.
func (m *member) control(op Op, p []byte, first, last bool) bool {
	if first {
		m.ctlLen = 0
	}
	m.ctlLen += copy(m.ctl[m.ctlLen:], p)
	if !last {
		return true
	}
	body := m.ctl[:m.ctlLen]
	switch op {
	case OpPing:
		if !m.closing {
			m.out = appendClientFrame(m.out, OpPong, body, m.mask)
		}
	case OpClose:
		m.closeRecv = true
		m.closeCode = closeCode(body)
		if !m.closing && m.f.phase.Load() < fanClose {
			m.errs.Add(1)
			m.f.noteErr(errEarlyClose)
		}
		if !m.closeSent {
			m.closeWith(m.closeCode)
		}
		m.end()
		return false
	}
	return true
}

// closeWith sends a close frame with code once, best effort.
func (m *member) closeWith(code int) {
	if m.closeSent || m.f.tcp {
		return
	}
	m.closeSent = true
	m.nc.SetWriteDeadline(time.Now().Add(m.f.cfg.closeWait))
	m.nc.Write(appendClientClose(nil, code, m.mask))
}

// shutdown closes a reading member cleanly: a close frame, the server's,
// then the server's end of the TCP connection (in tcp mode, a half-close
// and the end of stream), all within the close wait.
func (m *member) shutdown() {
	defer m.nc.Close()
	deadline := time.Now().Add(m.f.cfg.closeWait)
	m.nc.SetDeadline(deadline)
	m.closing = true
	if m.f.tcp {
		if tc, ok := m.nc.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		m.waitEOF(deadline)
		return
	}
	m.closeWith(int(ws.StatusNormalClosure))
	for !m.closeRecv && !m.ended {
		n, err := m.nc.Read(m.rbuf)
		if n > 0 && !m.parse(m.rbuf[:n], m.f.now(), math.MaxInt64) {
			break
		}
		if err != nil {
			if isTimeout(err) && time.Now().Before(deadline) {
				m.nc.SetReadDeadline(deadline)
				continue
			}
			break
		}
	}
	if !m.closeRecv {
		m.closeCode = closeAbnormal
		return
	}
	m.waitEOF(deadline)
}

func (m *member) waitEOF(deadline time.Time) {
	for {
		_, err := m.nc.Read(m.rbuf)
		if err != nil {
			if isTimeout(err) && time.Now().Before(deadline) {
				m.nc.SetReadDeadline(deadline)
				continue
			}
			return
		}
	}
}

// collect adds up what the members counted, after their goroutines ended.
func (f *fanRun) collect(res *Result, fr *FanoutResult) {
	var h Hist
	for _, m := range f.readers {
		res.Errors += m.errs.Load()
		if m.closeCode != 0 {
			res.CloseCodes[strconv.Itoa(m.closeCode)]++
		}
	}
	for _, m := range f.paced {
		if m.hist != nil {
			h.Merge(m.hist)
		}
		end := f.finalSeq
		if m.ended && !m.closing {
			fr.ReadersCut++ // before our closing handshake began
			end = m.nextSeq
		}
		if m.recv > 0 {
			fr.Expected += max(end-m.first, m.recv)
			fr.Received += m.recv
		}
		fr.Gaps += m.gaps
	}
	fr.Missing = fr.Expected - fr.Received
	if fr.Missing > 0 {
		res.Errors += fr.Missing
		f.noteErr(errFanoutMissing)
	}
	if fr.Expected > 0 {
		fr.DeliveryRatio = float64(fr.Received) / float64(fr.Expected)
	}
	if h.Count() > 0 {
		res.LatencyUS = latencyOf(&h)
	}
	if f.lastHist.Count() > 0 {
		fr.LastLatencyUS = latencyOf(&f.lastHist)
	}
	fr.LastMessages = f.lastN
}
