package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsactor/wsactor/session"
)

// Errors of a Broker.
var (
	// ErrNotConnected is Publish's error while the connection to NATS is
	// down: the message is lost for the other nodes (at most once), never
	// kept to be sent late.
	ErrNotConnected = errors.New("natsbroker: not connected to NATS; the message is lost for the other nodes")

	// ErrClosed is the error of every call after Close.
	ErrClosed = errors.New("natsbroker: broker closed")
)

// roomHeader carries the escaped name of a room whose token is a hash.
const roomHeader = "Wsactor-Room"

// Options configures a Broker. The zero value gives the defaults written
// beside each field.
type Options struct {
	// Prefix begins every subject: a room's text messages go to
	// Prefix.TOKEN.t and its binary ones to Prefix.TOKEN.b (TOKEN is
	// Token's). Nodes share rooms when they share NATS and the prefix.
	// Default DefaultPrefix, "wsactor.room".
	Prefix string

	// Name is the connection's name in the NATS server's monitoring
	// (Connect only). Default "wsactor".
	Name string

	// ReconnectWait is the pause between two attempts to reconnect to the
	// same server (Connect only); the attempts never stop. Default 250 ms.
	ReconnectWait time.Duration

	// QueueSize bounds the messages from NATS that wait to be handed to
	// the local rooms, per delivery goroutine (there are GOMAXPROCS of
	// them, at most 8). A message that finds its queue full is dropped
	// and counted in Stats.Dropped. Default 4096.
	QueueSize int

	// Logger receives the broker's events: disconnected, reconnected, a
	// subscription that failed, a full queue. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of the Options fields.
const (
	DefaultName          = "wsactor"
	DefaultReconnectWait = 250 * time.Millisecond
	DefaultQueueSize     = 4096
)

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Broker is a session.Broker over one NATS connection: give it to
// session.RoomsOptions.Broker, and the Rooms of every node connected to the
// same NATS (a server or a cluster) with the same Options.Prefix are one room
// space. Its methods are safe for concurrent use.
//
// Guarantees, in the terms Centrifugo uses for its brokers:
//   - At most once. A message reaches each member on the other nodes once
//     or not at all. A message published while the connection is down is
//     refused at once (ErrNotConnected; session.Rooms counts it in
//     RoomsStats.Lost), never buffered to be sent late or twice. A message
//     that NATS had accepted when the connection broke may be lost without
//     being counted: NATS core gives no acknowledgment.
//   - Order per publisher. The messages one node publishes to a room reach
//     each other node in the order they were published: one connection per
//     node, and NATS keeps a connection's order per subscription. Messages
//     of different nodes interleave in no particular order.
//   - No echo. A node does not receive its own publications back (the
//     connection is made with NATS's no-echo option): Rooms has delivered
//     them to the local members already.
//   - Losses are counted: refused publications in Stats.Refused (and in
//     RoomsStats.Lost), messages received that found the delivery queue
//     full in Stats.Dropped.
//
// A node is subscribed to a room while the room has local members
// (session.Rooms calls Subscribe and Unsubscribe); the subscriptions are
// made by a goroutine of the broker, so that the calls never wait for the
// network. When the connection breaks, nats.go reconnects (forever, with
// Connect) and subscribes again to every room; the messages published in
// between are lost.
type Broker struct {
	nc     *nats.Conn
	owned  bool          // made by Connect: Close closes it
	closed chan struct{} // closed by the connection's ClosedHandler (owned)
	prefix string
	log    *slog.Logger
	seed   maphash.Seed
	queues []chan *nats.Msg

	mu      sync.RWMutex
	subs    map[string]*entry // by token
	todo    []*entry          // entries whose subscription the subscriber must check
	asked   uint64            // Subscribe and Unsubscribe calls that changed something
	applied uint64            // of them, done by the subscriber
	pass    chan struct{}     // closed at the end of the subscriber's pass
	down    atomic.Bool       // Close was called (written under mu)
	gone    uint64            // drops of the subscriptions ended

	kick chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup

	published atomic.Uint64
	refused   atomic.Uint64
	received  atomic.Uint64
	failed    atomic.Uint64
}

// entry is the subscription of one room (one token).
type entry struct {
	name    string
	token   string
	header  string // the escaped name, when the token is a hash
	subject string // Prefix.TOKEN.*
	queue   chan *nats.Msg

	deliver atomic.Pointer[func(session.MessageType, []byte)] // nil: not wanted
	queued  bool                                              // in Broker.todo (mu)
	sub     *nats.Subscription                                // the subscriber's (mu to write)
}

// Connect connects to the NATS server or cluster at url (a comma-separated
// list of URLs is allowed, as nats.Connect takes) and returns a Broker that
// owns the connection. The connection is made with no echo, no buffering
// while disconnected, reconnection forever every Options.ReconnectWait, a
// ping every 10 s (a dead server is noticed within about 30 s; a restarted
// one at once) and a 2 s bound on a write to the server. When no server
// answers yet, Connect still returns a working Broker that keeps trying
// (its publications are refused until then); only a malformed url is an
// error.
func Connect(url string, opts *Options) (*Broker, error) {
	o := opts.withDefaults()
	if err := checkPrefix(o.Prefix); err != nil {
		return nil, err
	}
	log := o.Logger
	closed := make(chan struct{})
	nc, err := nats.Connect(url,
		nats.Name(o.Name),
		nats.NoEcho(),
		nats.ReconnectBufSize(-1),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.FlusherTimeout(2*time.Second),
		nats.PingInterval(10*time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats: connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // Close
			}
			log.Warn("nats: disconnected; reconnecting, rooms are local meanwhile", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats: reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats: "+err.Error(), "subject", sub.Subject)
				return
			}
			log.Warn("nats: " + err.Error())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: connect to %s: %w", url, err)
	}
	if !nc.IsConnected() {
		log.Warn("nats: no server answers yet; retrying, rooms are local meanwhile", "every", o.ReconnectWait)
	}
	b := newBroker(nc, o)
	b.owned, b.closed = true, closed
	return b, nil
}

// New returns a Broker over nc, which the caller keeps: Close leaves it
// open. nc must have been made with nats.NoEcho() and
// nats.ReconnectBufSize(-1) (the guarantees rest on them), and should
// reconnect forever (nats.MaxReconnects(-1)); New refuses a connection
// without the first two.
func New(nc *nats.Conn, opts *Options) (*Broker, error) {
	o := opts.withDefaults()
	if err := checkPrefix(o.Prefix); err != nil {
		return nil, err
	}
	if !nc.Opts.NoEcho {
		return nil, errors.New("natsbroker: the connection needs nats.NoEcho(), or a node would deliver its own messages twice")
	}
	if nc.Opts.ReconnectBufSize != -1 {
		return nil, errors.New("natsbroker: the connection needs nats.ReconnectBufSize(-1), or messages published while it is down would be sent late")
	}
	return newBroker(nc, o), nil
}

func newBroker(nc *nats.Conn, o Options) *Broker {
	b := &Broker{
		nc:     nc,
		prefix: o.Prefix,
		log:    o.Logger,
		seed:   maphash.MakeSeed(),
		subs:   make(map[string]*entry),
		pass:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
	}
	n := min(runtime.GOMAXPROCS(0), 8)
	b.queues = make([]chan *nats.Msg, n)
	for i := range b.queues {
		b.queues[i] = make(chan *nats.Msg, o.QueueSize)
	}
	b.wg.Add(1 + n)
	go b.subscriber()
	for _, q := range b.queues {
		go b.deliverer(q)
	}
	return b
}

// Publish sends a message of room to the other nodes. It returns
// ErrNotConnected at once while the connection is down: the message is
// lost, not kept. A message larger than the server's max_payload (1 MiB
// unless the server is configured otherwise) is refused too. It does not wait for the network, except when the
// connection's write buffer is full: then it writes it, for at most the
// connection's flusher timeout (2 s with Connect). p is the caller's again
// when Publish returns.
func (b *Broker) Publish(room string, typ session.MessageType, p []byte) error {
	if b.down.Load() {
		b.refused.Add(1)
		return ErrClosed
	}
	tt, err := typeToken(typ)
	if err != nil {
		b.refused.Add(1)
		return err
	}
	tok, hashed := token(room)
	subject := b.prefix + "." + tok + "." + tt
	if hashed {
		err = b.nc.PublishMsg(&nats.Msg{
			Subject: subject,
			Header:  nats.Header{roomHeader: []string{escaped(room)}},
			Data:    p,
		})
	} else {
		err = b.nc.Publish(subject, p)
	}
	if err != nil {
		b.refused.Add(1)
		if errors.Is(err, nats.ErrReconnectBufExceeded) {
			return ErrNotConnected
		}
		return fmt.Errorf("natsbroker: publish: %w", err)
	}
	b.published.Add(1)
	return nil
}

// Subscribe makes the node receive the messages that other nodes publish to
// room, and calls deliver with each, in order, on one of the broker's
// delivery goroutines; p is valid only during the call. It returns at once:
// the subscription is made by the broker's subscriber goroutine (Flush
// waits for it), and made again by nats.go after a reconnection. A second
// Subscribe to a room replaces deliver. It refuses a name whose token is the
// hash of another subscribed name's (a SHA-256 collision): that room stays
// local.
func (b *Broker) Subscribe(room string, deliver func(typ session.MessageType, p []byte)) error {
	tok, hashed := token(room)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down.Load() {
		return ErrClosed
	}
	e := b.subs[tok]
	if e == nil {
		e = &entry{
			name:    room,
			token:   tok,
			subject: b.prefix + "." + tok + ".*",
			queue:   b.queues[maphash.String(b.seed, tok)%uint64(len(b.queues))],
		}
		if hashed {
			e.header = escaped(room)
		}
		b.subs[tok] = e
	} else if e.name != room {
		return fmt.Errorf("natsbroker: subscribe: room %.40q has the subject of room %.40q (a SHA-256 collision); it stays local", room, e.name)
	}
	e.deliver.Store(&deliver)
	b.enqueue(e)
	return nil
}

// Unsubscribe stops what Subscribe started. It returns at once; messages
// of room that arrive meanwhile are dropped.
func (b *Broker) Unsubscribe(room string) error {
	tok, _ := token(room)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down.Load() {
		return ErrClosed
	}
	e := b.subs[tok]
	if e == nil || e.name != room || e.deliver.Load() == nil {
		return nil
	}
	e.deliver.Store(nil)
	b.enqueue(e)
	return nil
}

// enqueue asks the subscriber to look at e. Called with b.mu held.
func (b *Broker) enqueue(e *entry) {
	b.asked++
	if !e.queued {
		e.queued = true
		b.todo = append(b.todo, e)
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// subscriber makes and ends the NATS subscriptions that Subscribe and
// Unsubscribe asked for, so that those never wait for the connection's
// lock (which a write to a slow server holds). Requests for one room
// coalesce: a room left and joined again before a pass keeps its
// subscription.
func (b *Broker) subscriber() {
	defer b.wg.Done()
	for {
		select {
		case <-b.kick:
		case <-b.quit:
			return
		}
		b.mu.Lock()
		todo, asked := b.todo, b.asked
		b.todo = nil
		want := make([]bool, len(todo))
		for i, e := range todo {
			e.queued = false
			want[i] = e.deliver.Load() != nil
		}
		b.mu.Unlock()

		for i, e := range todo {
			switch {
			case want[i] && e.sub == nil:
				sub, err := b.nc.ChanSubscribe(e.subject, e.queue)
				if err != nil {
					b.failed.Add(1)
					b.log.Warn("nats: subscribe failed; the room stays local", "subject", e.subject, "err", err)
					continue
				}
				b.mu.Lock()
				e.sub = sub
				b.mu.Unlock()
			case !want[i] && e.sub != nil:
				n, _ := e.sub.Dropped()
				e.sub.Unsubscribe()
				b.mu.Lock()
				b.gone += uint64(n)
				e.sub = nil
				b.mu.Unlock()
			}
		}

		b.mu.Lock()
		for _, e := range todo {
			if e.sub == nil && !e.queued && e.deliver.Load() == nil && b.subs[e.token] == e {
				delete(b.subs, e.token)
			}
		}
		b.applied = asked
		close(b.pass)
		b.pass = make(chan struct{})
		b.mu.Unlock()
	}
}

// deliverer hands the messages of its queue to their rooms.
func (b *Broker) deliverer(q chan *nats.Msg) {
	defer b.wg.Done()
	for {
		select {
		case m := <-q:
			b.dispatch(m)
		case <-b.quit:
			return
		}
	}
}

func (b *Broker) dispatch(m *nats.Msg) {
	typ, ok := messageType(m.Subject)
	if !ok || len(m.Subject) <= len(b.prefix)+1 {
		return
	}
	// Prefix.TOKEN.t: the token is between the prefix's dot and the last.
	rest := m.Subject[len(b.prefix)+1:]
	tok := rest[:strings.LastIndexByte(rest, '.')]
	b.mu.RLock()
	e := b.subs[tok]
	b.mu.RUnlock()
	if e == nil {
		return
	}
	f := e.deliver.Load()
	if f == nil || e.header != "" && m.Header.Get(roomHeader) != e.header {
		return
	}
	b.received.Add(1)
	(*f)(typ, m.Data)
}

// Flush waits until the Subscribe and Unsubscribe calls made before it are
// known to the NATS server the broker is connected to, or ctx is done. The
// other servers of a cluster learn of them shortly after, over their
// routes. It fails while the connection is down. Without a deadline in
// ctx, it waits for the server at most 10 s.
func (b *Broker) Flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	b.mu.RLock()
	want := b.asked
	for b.applied < want {
		pass := b.pass
		b.mu.RUnlock()
		select {
		case <-pass:
		case <-b.quit:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.RLock()
	}
	b.mu.RUnlock()
	if b.down.Load() {
		return ErrClosed
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("natsbroker: flush: %w", err)
	}
	return nil
}

// Stats are a Broker's counts since it was made.
type Stats struct {
	Connected     bool   // the connection is up now
	Reconnects    uint64 // times the connection was made again
	Subscriptions int    // rooms subscribed now
	Published     uint64 // messages handed to NATS
	Refused       uint64 // messages refused (lost): not connected, or NATS refused them
	Received      uint64 // messages from other nodes handed to local rooms
	Dropped       uint64 // messages from other nodes dropped: their delivery queue was full
	Failed        uint64 // subscriptions that failed (their rooms stayed local)
}

// Stats returns the broker's counts.
func (b *Broker) Stats() Stats {
	ns := b.nc.Stats()
	s := Stats{
		Connected:  b.nc.IsConnected(),
		Reconnects: ns.Reconnects,
		Published:  b.published.Load(),
		Refused:    b.refused.Load(),
		Received:   b.received.Load(),
		Failed:     b.failed.Load(),
	}
	b.mu.RLock()
	s.Dropped = b.gone
	for _, e := range b.subs {
		if e.sub != nil {
			s.Subscriptions++
			n, _ := e.sub.Dropped()
			s.Dropped += uint64(n)
		}
	}
	b.mu.RUnlock()
	return s
}

// Close stops the broker: its goroutines end, its subscriptions with them,
// and the connection is closed if Connect made it. Messages waiting for
// delivery are dropped. Later calls return ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.down.Load() {
		b.mu.Unlock()
		return ErrClosed
	}
	b.down.Store(true)
	b.mu.Unlock()
	close(b.quit)
	b.wg.Wait()
	if b.owned {
		b.nc.Close()
		<-b.closed
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.subs {
		if e.sub != nil {
			e.sub.Unsubscribe()
			e.sub = nil
		}
	}
	return nil
}
