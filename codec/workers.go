package codec

import (
	"runtime"
	"sync"

	"github.com/gobwas/ws"
)

// DefaultWorkerThreshold is the payload size from which a frame is worth
// encoding on a codec worker rather than inline. BenchmarkMaskInline,
// BenchmarkMaskWorker and BenchmarkMaskWorkerPipelined set it: a hop costs
// about 300 ns plus moving the bytes between cores, so below 16 KiB a worker
// takes 1.6 to 4 times as long as masking inline; from 64 KiB up, workers
// kept busy match inline throughput or beat it when cores are idle, and the
// owner's goroutine is free meanwhile.
const DefaultWorkerThreshold = 64 << 10

// Job is one frame to encode on a codec worker. The worker fills Frame (a
// pooled buffer holding the whole encoded frame; give it back with
// ReleaseFrame once written) and then delivers the job: on Reply if set,
// else by calling Done, on the worker's goroutine.
type Job struct {
	Role    Role
	Fin     bool
	Op      ws.OpCode
	Rsv     byte
	Payload []byte // not modified; must stay unchanged until delivery

	Frame []byte // the result

	Reply chan<- *Job // receives the finished job; the worker blocks until it does
	Done  func(*Job)  // called with the finished job when Reply is nil; must not block

	run func() // Go's: run instead of encoding
}

// ReleaseFrame returns the job's encoded frame to the pool.
func (j *Job) ReleaseFrame() {
	if j.Frame != nil {
		putBuf(j.Frame)
		j.Frame = nil
	}
}

// EncodeFrame encodes one whole frame (header and, for a client, the payload
// masked with a fresh key) into a pooled buffer; give it back with
// ReleaseFrame once written. It is what a worker runs, and what an owner runs
// inline for small frames.
func EncodeFrame(role Role, fin bool, op ws.OpCode, rsv byte, p []byte) []byte {
	h := ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Length: int64(len(p)), Masked: role == Client}
	if h.Masked {
		h.Mask = NewMask()
	}
	buf := getBuf(HeaderLen(h.Length, h.Masked) + len(p))
	var hb [MaxHeaderLen]byte
	n := copy(buf, hb[:PutHeader(hb[:], h)])
	if h.Masked {
		MaskInto(buf[n:], p, h.Mask)
	} else {
		copy(buf[n:], p)
	}
	return buf
}

// Workers is a pool of goroutines that encode frames off their owner's
// goroutine. Its owner starts it with NewWorkers and must call Stop, which
// waits for every worker to exit.
type Workers struct {
	jobs chan *Job
	wg   sync.WaitGroup

	mu      sync.RWMutex
	stopped bool
}

// NewWorkers starts n workers (GOMAXPROCS when n <= 0) sharing a queue of
// queue jobs (4 per worker when queue <= 0).
func NewWorkers(n, queue int) *Workers {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if queue <= 0 {
		queue = 4 * n
	}
	w := &Workers{jobs: make(chan *Job, queue)}
	w.wg.Add(n)
	for range n {
		go w.work()
	}
	return w
}

func (w *Workers) work() {
	defer w.wg.Done()
	for j := range w.jobs {
		if j.run != nil {
			j.run()
			continue
		}
		j.Frame = EncodeFrame(j.Role, j.Fin, j.Op, j.Rsv, j.Payload)
		if j.Reply != nil {
			j.Reply <- j
		} else if j.Done != nil {
			j.Done(j)
		}
	}
}

// Submit queues j without blocking. It reports false when the queue is full
// or the pool was stopped; the caller then encodes inline.
func (w *Workers) Submit(j *Job) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopped {
		return false
	}
	select {
	case w.jobs <- j:
		return true
	default:
		return false
	}
}

// Go runs fn on a worker, for heavy codec work other than a frame's
// encoding (a large payload's compression). It reports false, and runs
// nothing, when the queue is full or the pool was stopped; the caller then
// does the work where it is.
func (w *Workers) Go(fn func()) bool {
	return w.Submit(&Job{run: fn})
}

// Stop lets the workers finish the queued jobs and waits for them to exit.
// Submit reports false afterwards. Stop may be called more than once.
func (w *Workers) Stop() {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.jobs)
	}
	w.mu.Unlock()
	w.wg.Wait()
}
