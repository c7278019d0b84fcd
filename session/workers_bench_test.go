package session

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
)

// BenchmarkCompressedBroadcast measures what compressing a large broadcast
// on a codec worker (GroupOptions.Workers) buys, against compressing it on
// the publisher's goroutine: a group of 8 members without compression and
// 8 with permessage-deflate, one broadcast per iteration, while 4 other
// sessions echo 64 B messages one at a time. It reports the time the
// publisher spends in Broadcast (publish-ms), until the last member without
// compression has the message (plain-ms) and the last compressed one
// (deflate-ms), and the echoes' round trips meanwhile (echo-p50-us,
// echo-p99-us). Run it with -benchtime=20x or more and -count to compare
// medians; docs/decisions.md has the figures that set WorkerThreshold.
func BenchmarkCompressedBroadcast(b *testing.B) {
	for _, size := range []int{4 << 10, 16 << 10, 64 << 10, 1 << 20} {
		for _, mode := range []struct {
			name    string
			workers int
		}{{"inline", 0}, {"workers", runtime.GOMAXPROCS(0)}} {
			b.Run(sizeName(size)+"/"+mode.name, func(b *testing.B) {
				benchCompressedBroadcast(b, size, mode.workers)
			})
		}
	}
}

// compressiblePayload is text of words drawn at random from a small
// vocabulary: it compresses to about a third, at a real cost.
func compressiblePayload(n int) []byte {
	words := []string{"room", "message", "member", "broadcast", "session", "alpha", "beta", "gamma", "delta", "0", "17", "4242", "{", "}", ":", ","}
	rng := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 0, n+16)
	for len(p) < n {
		p = append(p, words[rng.IntN(len(words))]...)
		p = append(p, ' ')
	}
	return p[:n]
}

func benchCompressedBroadcast(b *testing.B, size, workers int) {
	var pool *codec.Workers
	if workers > 0 {
		pool = codec.NewWorkers(workers, 0)
		defer pool.Stop()
	}
	// With workers, every size takes the hop: the threshold is what this
	// measures.
	g := NewGroup(&GroupOptions{Workers: pool, WorkerThreshold: 1024, MaxBacklog: 64 << 20})
	addr, members := benchServer(b, &Options{Compression: &Compression{}, IdleTimeout: -1, MaxPendingBytes: 64 << 20})
	echoAddr, _ := benchServer(b, &Options{IdleTimeout: -1, OnMessage: func(s *Session, m Message) { s.WriteMessage(&m, nil) }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type arrival struct {
		deflate bool
		at      time.Time
	}
	arrived := make(chan arrival, 64)
	const plain, compressed = 8, 8
	var clients []*Session
	defer func() {
		for _, c := range clients {
			c.CloseNow()
			<-c.Done()
		}
	}()
	for i := range plain + compressed {
		deflate := i >= plain
		opts := &Options{IdleTimeout: -1, MaxMessageSize: 4 << 20, OnMessage: func(_ *Session, m Message) {
			m.Release()
			arrived <- arrival{deflate, time.Now()}
		}}
		if deflate {
			opts.Compression = &Compression{}
		}
		c, err := Dial(ctx, "ws://"+addr, opts)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		g.Add(<-members)
	}

	// The echoes, one message at a time per session, until stop.
	stop := make(chan struct{})
	var mu sync.Mutex
	var rtts []time.Duration
	var wg sync.WaitGroup
	for range 4 {
		c, err := Dial(ctx, "ws://"+echoAddr, &Options{IdleTimeout: -1})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		wg.Go(func() {
			p := make([]byte, 64)
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				if err := c.WriteContext(ctx, Binary, p); err != nil {
					return
				}
				m, err := c.Read(ctx)
				if err != nil {
					return
				}
				m.Release()
				mu.Lock()
				rtts = append(rtts, time.Since(t0))
				mu.Unlock()
			}
		})
	}

	payload := compressiblePayload(size)
	var publish, plainLat, deflateLat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		g.Broadcast(Text, payload)
		publish = append(publish, time.Since(t0))
		var lastPlain, lastDeflate time.Time
		for range plain + compressed {
			select {
			case a := <-arrived:
				if a.deflate {
					lastDeflate = a.at
				} else {
					lastPlain = a.at
				}
			case <-ctx.Done():
				b.Fatal("a broadcast did not reach every member")
			}
		}
		plainLat = append(plainLat, lastPlain.Sub(t0))
		deflateLat = append(deflateLat, lastDeflate.Sub(t0))
	}
	close(stop)
	wg.Wait()
	b.ReportMetric(ms(median(publish)), "publish-ms")
	b.ReportMetric(ms(median(plainLat)), "plain-ms")
	b.ReportMetric(ms(median(deflateLat)), "deflate-ms")
	mu.Lock()
	defer mu.Unlock()
	if len(rtts) > 0 {
		slices.Sort(rtts)
		b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "echo-p50-us")
		b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "echo-p99-us")
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
