package session

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// DefaultStreamFrameSize is the payload size of a MessageWriter's frames
// when Options.FragmentSize is not set.
const DefaultStreamFrameSize = 64 << 10

// ErrWriterClosed is returned by a MessageWriter used after Close.
var ErrWriterClosed = errors.New("session: message writer used after Close")

// MessageWriter writes one message in pieces, for messages too large to
// hold in memory at once: what is written goes out in frames of
// Options.FragmentSize bytes (DefaultStreamFrameSize when unset) as they
// fill, and Close sends the rest as the last frame. Write copies p into a
// pooled frame buffer, so p may be reused at once; at most two buffers are
// in use, one being written and one being filled, so a writer faster than
// the peer waits in Write (backpressure). With permessage-deflate the
// message is compressed as it is written, and the frames carry a frame's
// worth of compressed bytes each.
//
// While the message is under way, the session's other data writes wait
// behind it (they complete with ErrMailboxFull beyond Options.MailboxSize);
// pings, pongs and close frames may go between its frames, as RFC 6455
// allows. Close must be called, also after an error, or the writes waiting
// behind the message never go.
//
// A message that has a frame on the wire cannot be taken back: when ctx
// ends while part of it is sent, or a frame of it fails, the session
// starts the closing handshake with 1011, since the peer cannot be told
// that the message was cut short. Cancel(Total) leaves such a message
// alone (it has begun); one that has nothing on the wire yet is canceled.
//
// A MessageWriter is not safe for concurrent use. From Options.OnMessage it
// may be used like WriteContext.
type MessageWriter struct {
	s       *Session
	ctx     context.Context
	op      ws.OpCode // of the next frame: the message's type, then continuation
	stream  uint64
	size    int
	buf     []byte               // the frame being filled (pooled), or nil
	z       *codec.DeflateStream // the message compressed as it comes, with permessage-deflate
	rsv1    bool                 // the next frame is the first of a compressed message
	reply   chan Completion      // the frame in flight's completion
	pending uint64               // the id of the frame in flight; 0 when none
	started bool                 // a frame went to the session
	finSent bool                 // the last frame went to the session
	err     error                // sticky
	closed  bool
}

// NewWriter starts a message of type typ that is written in pieces through
// the MessageWriter it returns. ctx bounds every wait of the writer.
func (s *Session) NewWriter(ctx context.Context, typ MessageType) *MessageWriter {
	w := &MessageWriter{
		s:      s,
		ctx:    ctx,
		op:     ws.OpCode(typ),
		stream: s.nextID.Add(1),
		size:   s.opts.FragmentSize,
		reply:  make(chan Completion, 1),
	}
	if w.size <= 0 {
		w.size = DefaultStreamFrameSize
	}
	if typ != Text && typ != Binary {
		w.err = fmt.Errorf("session: write: invalid message type %d: use Text or Binary", typ)
	}
	return w
}

// compress compresses p into the message (permessage-deflate), sending a
// frame each time a frame's worth of compressed bytes waits.
func (w *MessageWriter) compress(p []byte) error {
	if w.z == nil {
		w.z = codec.NewDeflateStream(w.s.opts.Compression.level())
		w.rsv1 = true
	}
	w.z.Write(p)
	for w.z.Buffered()-4 >= w.size {
		if err := w.sendFrame(w.z.Take(w.size), false); err != nil {
			return err
		}
	}
	return nil
}

// Write adds p to the message. It returns when p has been copied, after
// waiting for an earlier frame to be written if both buffers are full.
func (w *MessageWriter) Write(p []byte) (int, error) {
	if w.s.deflate && w.err == nil && !w.closed && len(p) > 0 {
		if err := w.check(); err != nil {
			return 0, err
		}
		if err := w.compress(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n := 0
	for len(p) > 0 {
		if err := w.room(); err != nil {
			return n, err
		}
		k := copy(w.buf[len(w.buf):w.size], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
	}
	return n, w.check()
}

// ReadFrom adds what r yields, until io.EOF, to the message, reading
// straight into the frame buffers: io.Copy uses it.
func (w *MessageWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	if w.s.deflate {
		// The bytes read are compressed, not sent: read through a buffer
		// of the pool.
		buf := bufpool.Get(w.size)
		defer bufpool.Put(buf)
		for {
			k, err := r.Read(buf)
			if k > 0 {
				if _, werr := w.Write(buf[:k]); werr != nil {
					return n, werr
				}
				n += int64(k)
			}
			if err == io.EOF {
				return n, w.check()
			}
			if err != nil {
				return n, err
			}
		}
	}
	for {
		if err := w.room(); err != nil {
			return n, err
		}
		k, err := r.Read(w.buf[len(w.buf):w.size])
		w.buf = w.buf[:len(w.buf)+k]
		n += int64(k)
		if err == io.EOF {
			return n, w.check()
		}
		if err != nil {
			return n, err
		}
	}
}

// room makes sure that the frame buffer has room, sending it as a frame
// when it is full: the message has more to come.
func (w *MessageWriter) room() error {
	if err := w.check(); err != nil {
		return err
	}
	if w.buf != nil && len(w.buf) < w.size {
		return nil
	}
	if w.buf != nil {
		if err := w.send(false); err != nil {
			return err
		}
	}
	w.buf = bufpool.Get(w.size)[:0]
	return nil
}

// Close sends the rest of the message as its last frame and waits until it
// is written. It returns the first error of the writer, if any; a second
// Close returns the same.
func (w *MessageWriter) Close() error {
	if w.closed {
		if w.err == ErrWriterClosed {
			return nil
		}
		return w.err
	}
	err := w.check()
	w.closed = true
	switch {
	case err != nil:
	case w.z != nil:
		err = w.finishCompressed()
	default:
		err = w.send(true)
	}
	if err == nil {
		err = w.wait()
	}
	if err != nil {
		return err
	}
	w.err = ErrWriterClosed
	return nil
}

// check returns the writer's error, cutting the message short first when
// ctx has ended.
func (w *MessageWriter) check() error {
	if w.err == nil {
		if err := w.ctx.Err(); err != nil {
			w.fail(&canceledError{err})
		}
	}
	if w.err == nil && w.closed {
		return ErrWriterClosed
	}
	return w.err
}

// send hands the frame buffer to the session as the next frame, once the
// frame before it is written.
func (w *MessageWriter) send(fin bool) error {
	p := w.buf
	w.buf = nil
	return w.sendFrame(p, fin)
}

// finishCompressed sends the rest of a compressed message, in frames of at
// most the frame size, the last one final.
func (w *MessageWriter) finishCompressed() error {
	rest := w.z.Finish()
	w.z = nil
	defer func() {
		if rest != nil {
			bufpool.Put(rest)
		}
	}()
	for len(rest) > w.size {
		p := bufpool.Get(w.size)[:w.size]
		copy(p, rest)
		rest = rest[:copy(rest, rest[w.size:])]
		if err := w.sendFrame(p, false); err != nil {
			return err
		}
	}
	p := rest
	rest = nil
	return w.sendFrame(p, true)
}

// sendFrame hands p, a pooled buffer or nil, to the session as the next
// frame, once the frame before it is written.
func (w *MessageWriter) sendFrame(p []byte, fin bool) error {
	if err := w.wait(); err != nil {
		if p != nil {
			bufpool.Put(p)
		}
		return err
	}
	c := cmd{kind: cmdFrame, user: KindWrite, op: w.op, fin: fin, rsv1: w.rsv1, stream: w.stream, p: p, release: p != nil, reply: w.reply}
	w.rsv1 = false
	w.finSent = fin
	if !w.started {
		// The first frame queues behind the writes before it, and may be
		// refused with ErrMailboxFull: nothing is on the wire then.
		id, err := w.s.send(c)
		if err != nil {
			// Refused at the call: its completion is not waited for.
			w.fail(err)
			return w.err
		}
		w.pending = id
		w.started = true
	} else {
		// Later frames never are: a message cut short costs the session.
		// At most one is in flight, so the urgent lane stays bounded.
		c.id = w.s.nextID.Add(1)
		w.pending = c.id
		w.s.mb.SendUrgent(c)
	}
	w.op = ws.OpContinuation
	return nil
}

// wait waits for the frame in flight, if any, to be written.
func (w *MessageWriter) wait() error {
	if w.pending == 0 {
		return nil
	}
	w.s.mb.Kick() // from OnMessage the actor is held: it must run
	var c Completion
	select {
	case c = <-w.reply:
		w.pending = 0
		if c.Err != nil {
			w.fail(c.Err)
		}
		return w.err
	case <-w.ctx.Done():
	}
	w.fail(&canceledError{w.ctx.Err()})
	return w.err
}

// fail makes err the writer's error and gives up on the message: the
// frame in flight is canceled if it has not begun, and if part of the
// message is on the wire the session closes with 1011.
func (w *MessageWriter) fail(err error) {
	w.err = err
	if w.buf != nil {
		bufpool.Put(w.buf[:0])
		w.buf = nil
	}
	if w.z != nil {
		w.z.Release()
		w.z = nil
	}
	if !w.started {
		return
	}
	w.s.mb.SendUrgent(cmd{kind: cmdCutStream, stream: w.stream, id: w.pending})
	if w.pending != 0 {
		c := <-w.reply // comes: canceled, written, or failed with the session
		w.s.mb.SendUrgent(cmd{kind: cmdForgetID, id: w.pending})
		w.pending = 0
		if c.Err == nil && w.finSent {
			w.err = nil // the last frame had begun and went out: the message is whole
		}
	}
}

// onFrame queues a MessageWriter's frame, or holds it while another
// message is under way.
func (s *Session) onFrame(c *cmd) {
	if err := s.refusal(); err != nil {
		s.completeCmd(c, err)
		return
	}
	if len(s.canceled) > 0 && s.takeCanceled(c.id) {
		s.completeCmd(c, ErrCanceled)
		return
	}
	first := c.op != ws.OpContinuation
	switch {
	case s.stream == c.stream:
	case first && s.stream == 0:
		if !c.fin {
			s.stream, s.streamWritten = c.stream, false
		}
	case first:
		s.hold(*c) // another message is under way
		return
	default:
		// The message's start was canceled: it is not under way.
		s.completeCmd(c, ErrCanceled)
		return
	}
	if c.fin {
		s.stream, s.streamWritten = 0, false
	}
	s.queue(c.record())
	if s.stream == 0 {
		s.releaseHeld()
	}
}

// onCutStream gives up on a MessageWriter's message, and on its frame in
// flight (c.id): a frame still in the mailbox is canceled when it comes,
// the first frame is taken back from the batch (nothing of the message is
// on the wire then), and a later frame the batch holds goes out, since
// frames of another message may be queued behind it. A message with part
// of it on the wire and its end not queued makes the session close with
// 1011.
func (s *Session) onCutStream(c *cmd) {
	if c.id != 0 {
		queued, first := false, false
		if s.scratch != nil {
			for i := range s.scratch.recs {
				if r := &s.scratch.recs[i]; r.kind != 0 && r.id == c.id {
					queued, first = true, r.op != ws.OpContinuation
					break
				}
			}
		}
		switch {
		case queued && first:
			s.onCancelID(c.id)
		case !queued && s.state != stateDone:
			s.canceled = append(s.canceled, c.id)
		}
	}
	if s.stream != c.stream {
		return // it never began, or it ended
	}
	written := s.streamWritten
	s.stream, s.streamWritten = 0, false
	if !written {
		s.releaseHeld()
		return
	}
	s.cut = true
	if s.state == stateOpen {
		s.state = stateClosing
		s.queueClose(codec.CloseInternalError, "message cut short")
	}
	s.dropHeld(ErrClosing)
}

// hold keeps a data write until the message under way has ended.
func (s *Session) hold(c cmd) {
	if s.held == nil {
		s.held = new([]cmd)
	}
	if len(*s.held) >= s.opts.mailboxSize() {
		s.completeCmd(&c, ErrMailboxFull)
		return
	}
	*s.held = append(*s.held, c)
}

// releaseHeld takes the held writes in order, until one of them starts
// another streamed message.
func (s *Session) releaseHeld() {
	for s.held != nil && len(*s.held) > 0 && s.stream == 0 {
		h := *s.held
		c := h[0]
		h[0] = cmd{}
		*s.held = h[1:]
		s.receive(c)
	}
	if s.held != nil && len(*s.held) == 0 {
		s.held = nil
	}
}

// dropHeld completes every held write with err.
func (s *Session) dropHeld(err error) {
	if s.held == nil {
		return
	}
	held := *s.held
	s.held = nil
	for i := range held {
		s.completeCmd(&held[i], err)
	}
}
