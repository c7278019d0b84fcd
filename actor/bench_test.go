package actor

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// benchMsg is the element type of every mailbox and channel here: the size
// of a small command, with a pointer in it as commands have.
type benchMsg struct {
	id    int
	reply chan<- int
}

const benchCapacity = 1024

// sink counts what it receives and closes done at target. Only the actor
// goroutine touches n.
type sink struct {
	n      int
	target int
	done   chan struct{}
}

func newSink(target int) *sink { return &sink{target: target, done: make(chan struct{})} }

func (s *sink) Receive(benchMsg) {
	s.n++
	if s.n == s.target {
		close(s.done)
	}
}

func (s *sink) Flush()         {}
func (s *sink) Panicked(error) {}

// echo answers every message through its outbox.
type echo struct{ o Outbox[int] }

func (e *echo) Receive(m benchMsg) { e.o.Deliver(m.reply, m.id) }
func (e *echo) Flush()             {}
func (e *echo) Panicked(error)     {}

func BenchmarkSend(b *testing.B) {
	b.Run("one-sender", func(b *testing.B) {
		s := newSink(b.N)
		a := New[benchMsg](benchCapacity, s)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for !a.Send(benchMsg{id: i}) {
				runtime.Gosched()
			}
		}
		<-s.done
	})
}

// BenchmarkChannelBaseline is BenchmarkSend and BenchmarkSendParallel with
// a buffered channel of the same element type and size in place of the
// actor, and a goroutine that counts in place of the behavior.
func BenchmarkChannelBaseline(b *testing.B) {
	consume := func(ch <-chan benchMsg, target int, done chan<- struct{}) {
		for n := 0; n < target; n++ {
			<-ch
		}
		close(done)
	}
	b.Run("one-sender", func(b *testing.B) {
		ch := make(chan benchMsg, benchCapacity)
		done := make(chan struct{})
		go consume(ch, b.N, done)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ch <- benchMsg{id: i}
		}
		<-done
	})
	b.Run("parallel", func(b *testing.B) {
		ch := make(chan benchMsg, benchCapacity)
		done := make(chan struct{})
		go consume(ch, b.N, done)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				ch <- benchMsg{id: i}
			}
		})
		<-done
	})
	b.Run("round-trip", func(b *testing.B) {
		ch := make(chan benchMsg, 1)
		done := make(chan struct{})
		go func() {
			for m := range ch {
				m.reply <- m.id
			}
			close(done)
		}()
		reply := make(chan int, 1)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ch <- benchMsg{id: i, reply: reply}
			<-reply
		}
		close(ch)
		<-done
	})
}

// BenchmarkSendReceiveRoundTrip measures one message there and its reply
// back: the actor starts, receives, replies through its Outbox to a
// buffered channel, and goes idle again every time.
func BenchmarkSendReceiveRoundTrip(b *testing.B) {
	a := New[benchMsg](benchCapacity, &echo{})
	reply := make(chan int, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !a.Send(benchMsg{id: i, reply: reply}) {
			b.Fatal("Send refused on an empty lane")
		}
		<-reply
	}
}

func BenchmarkSendParallel(b *testing.B) {
	s := newSink(b.N)
	a := New[benchMsg](benchCapacity, s)
	var refused atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			for !a.Send(benchMsg{id: i}) {
				refused.Add(1)
				runtime.Gosched()
			}
		}
	})
	<-s.done
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
}

func BenchmarkOutboxDeliver(b *testing.B) {
	var o Outbox[int]
	ch := make(chan int, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o.Deliver(ch, i)
		<-ch
	}
}

func BenchmarkReplyDeliver(b *testing.B) {
	var o Outbox[int]
	ch := make(chan int, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := NewReply[int](ch)
		if !r.Deliver(&o, i) {
			b.Fatal("first Deliver = false")
		}
		<-ch
	}
}
