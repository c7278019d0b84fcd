package codec_test

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/codec"
)

// checkJobFrame decodes a finished job's frame with the receiving role and
// compares it with the job.
func checkJobFrame(t *testing.T, j *codec.Job) {
	t.Helper()
	r := codec.NewReader(bytes.NewReader(j.Frame), codec.Decoder{Role: opposite(j.Role)}, 0)
	defer r.Release()
	f, err := r.NextFrame()
	if err != nil {
		t.Fatalf("decoding the job's frame: %v", err)
	}
	if f.Header.OpCode != j.Op || f.Header.Fin != j.Fin || !bytes.Equal(f.Payload, j.Payload) {
		t.Fatalf("job frame %+v with %d bytes, want op %v fin %v with %d bytes", f.Header, len(f.Payload), j.Op, j.Fin, len(j.Payload))
	}
	if r.Buffered() != 0 {
		t.Fatalf("%d bytes after the frame", r.Buffered())
	}
}

func TestWorkersReply(t *testing.T) {
	w := codec.NewWorkers(2, 8)
	t.Cleanup(w.Stop)
	reply := make(chan *codec.Job, 8)
	payload := message(ws.OpBinary, 100000)
	jobs := []*codec.Job{
		{Role: codec.Client, Fin: true, Op: ws.OpBinary, Payload: payload, Reply: reply},
		{Role: codec.Client, Fin: false, Op: ws.OpText, Payload: []byte("héllo"), Reply: reply},
		{Role: codec.Server, Fin: true, Op: ws.OpBinary, Payload: payload[:300], Reply: reply},
		{Role: codec.Client, Fin: true, Op: ws.OpPing, Payload: nil, Reply: reply},
	}
	orig := bytes.Clone(payload)
	for _, j := range jobs {
		if !w.Submit(j) {
			t.Fatal("Submit refused a job with room in the queue")
		}
	}
	seen := map[*codec.Job]bool{}
	for range jobs {
		j := <-reply
		if seen[j] {
			t.Fatal("job delivered twice")
		}
		seen[j] = true
		checkJobFrame(t, j)
		j.ReleaseFrame()
		if j.Frame != nil {
			t.Fatal("ReleaseFrame left the frame")
		}
	}
	if !bytes.Equal(payload, orig) {
		t.Fatal("a worker changed the caller's payload")
	}
}

func TestWorkersDone(t *testing.T) {
	w := codec.NewWorkers(0, 0)
	const jobs = 100
	var delivered atomic.Int32
	var mu sync.Mutex
	var bad []*codec.Job
	done := func(j *codec.Job) {
		if len(j.Frame) != codec.HeaderLen(int64(len(j.Payload)), true)+len(j.Payload) {
			mu.Lock()
			bad = append(bad, j)
			mu.Unlock()
		}
		j.ReleaseFrame()
		delivered.Add(1)
	}
	submitted := 0
	for i := range jobs {
		j := &codec.Job{Role: codec.Client, Fin: true, Op: ws.OpBinary, Payload: make([]byte, i*100), Done: done}
		if w.Submit(j) {
			submitted++
		}
	}
	w.Stop() // waits for the queued jobs
	if got := int(delivered.Load()); got != submitted {
		t.Fatalf("Stop returned with %d of %d submitted jobs delivered", got, submitted)
	}
	if submitted == 0 {
		t.Fatal("no job was accepted")
	}
	if len(bad) > 0 {
		t.Fatalf("%d jobs with a frame of the wrong size", len(bad))
	}
}

func TestWorkersStop(t *testing.T) {
	w := codec.NewWorkers(runtime.GOMAXPROCS(0), 4)
	w.Stop()
	w.Stop() // a second Stop is harmless
	if w.Submit(&codec.Job{Role: codec.Client, Op: ws.OpBinary, Done: func(*codec.Job) {}}) {
		t.Fatal("Submit after Stop accepted a job")
	}
	goleak.VerifyNone(t)
}

// TestWorkersQueueFull fills a one-worker pool deterministically: the worker
// holds the first job until released, the queue holds the second, and the
// third is refused.
func TestWorkersQueueFull(t *testing.T) {
	w := codec.NewWorkers(1, 1)
	started := make(chan struct{})
	release := make(chan struct{})
	blocking := &codec.Job{Role: codec.Client, Op: ws.OpBinary, Done: func(j *codec.Job) {
		j.ReleaseFrame()
		close(started)
		<-release
	}}
	queued := make(chan *codec.Job, 1)
	if !w.Submit(blocking) {
		t.Fatal("first job refused")
	}
	<-started
	if !w.Submit(&codec.Job{Role: codec.Client, Op: ws.OpBinary, Reply: queued}) {
		t.Fatal("second job refused with an empty queue")
	}
	if w.Submit(&codec.Job{Role: codec.Client, Op: ws.OpBinary, Reply: queued}) {
		t.Fatal("third job accepted with a full queue")
	}
	close(release)
	j := <-queued
	j.ReleaseFrame()
	w.Stop()
}

// TestWorkersSubmitDuringStop races many submitters against Stop: no send on
// a closed queue, and every accepted job is delivered.
func TestWorkersSubmitDuringStop(t *testing.T) {
	for range 20 {
		w := codec.NewWorkers(2, 4)
		var accepted, delivered atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 50 {
					j := &codec.Job{Role: codec.Client, Op: ws.OpBinary, Payload: []byte("x"), Done: func(j *codec.Job) {
						j.ReleaseFrame()
						delivered.Add(1)
					}}
					if w.Submit(j) {
						accepted.Add(1)
					}
				}
			})
		}
		w.Stop()
		wg.Wait()
		w.Stop()
		if accepted.Load() != delivered.Load() {
			t.Fatalf("%d jobs accepted, %d delivered", accepted.Load(), delivered.Load())
		}
	}
}

func TestEncodeFrame(t *testing.T) {
	payload := message(ws.OpText, 1000)
	orig := bytes.Clone(payload)
	for _, role := range bothRoles {
		t.Run(role.String(), func(t *testing.T) {
			frame := codec.EncodeFrame(role, true, ws.OpText, 0, payload)
			defer codec.ReleaseFrame(frame)
			j := &codec.Job{Role: role, Fin: true, Op: ws.OpText, Payload: payload, Frame: frame}
			checkJobFrame(t, j)
			if !bytes.Equal(payload, orig) {
				t.Fatal("EncodeFrame changed the caller's payload")
			}
		})
	}
}

// Go runs a function on a worker, in order with the frames queued around
// it, and is refused like Submit when the queue is full or after Stop.
func TestWorkersGo(t *testing.T) {
	w := codec.NewWorkers(1, 2)
	started := make(chan struct{})
	release := make(chan struct{})
	if !w.Go(func() { close(started); <-release }) {
		t.Fatal("Go refused with an empty queue")
	}
	<-started
	var order []int
	done := make(chan struct{})
	w.Go(func() { order = append(order, 1) })
	if !w.Go(func() { order = append(order, 2); close(done) }) {
		t.Fatal("Go refused with room in the queue")
	}
	if w.Go(func() {}) {
		t.Fatal("Go accepted with a full queue")
	}
	close(release)
	<-done
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Fatalf("ran %v, want [1 2]", order)
	}
	w.Stop()
	if w.Go(func() {}) {
		t.Fatal("Go accepted after Stop")
	}
}
