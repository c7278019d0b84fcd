package codec_test

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// A prepared message is encoded once and written to many server sessions.
func ExamplePrepare() {
	pf := codec.Prepare(ws.OpText, []byte("hello, everyone"))
	defer pf.Release() // the creator's reference

	for _, session := range []string{"alice", "bob"} {
		pf.Retain() // one reference per write in flight
		b := codec.Batch{Role: codec.Server}
		pf.AddTo(&b)
		var conn bytes.Buffer // a session's connection
		n, _ := b.WriteTo(&conn)
		b.Release()
		pf.Release() // the write is done
		fmt.Printf("%s: %d bytes, header % x, payload %q\n", session, n, conn.Bytes()[:2], conn.Bytes()[2:])
	}
	// Output:
	// alice: 17 bytes, header 81 0f, payload "hello, everyone"
	// bob: 17 bytes, header 81 0f, payload "hello, everyone"
}

// A server batch holds frame headers and references the payloads: one
// vectored write sends them all. A client Reader decodes them.
func ExampleBatch() {
	b := codec.Batch{Role: codec.Server}
	defer b.Release()
	b.Add(true, ws.OpText, 0, []byte("hello"))
	b.Add(true, ws.OpPing, 0, nil)
	b.Add(true, ws.OpBinary, 0, []byte{1, 2, 3})
	fmt.Println("segments:", b.Segments(), "bytes:", b.Len())

	var conn bytes.Buffer
	if _, err := b.WriteTo(&conn); err != nil {
		fmt.Println(err)
		return
	}
	b.Reset() // the payloads are the caller's again

	r := codec.NewReader(&conn, codec.Decoder{Role: codec.Client}, 0)
	defer r.Release()
	for {
		f, err := r.NextFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("opcode %d, fin %v, payload %q\n", f.Header.OpCode, f.Header.Fin, f.Payload)
	}
	// Output:
	// segments: 4 bytes: 14
	// opcode 1, fin true, payload "hello"
	// opcode 9, fin true, payload ""
	// opcode 2, fin true, payload "\x01\x02\x03"
}

// Fragments splits a message into frames of at most 4 bytes; control frames
// may go between them.
func ExampleFragments() {
	for h, part := range codec.Fragments(ws.OpText, []byte("fragmented"), 4) {
		fmt.Printf("opcode %d, fin %v, %q\n", h.OpCode, h.Fin, part)
	}
	// Output:
	// opcode 1, fin false, "frag"
	// opcode 0, fin false, "ment"
	// opcode 0, fin true, "ed"
}

// ParseClosePayload validates a received close frame body; a violation
// names the close code to answer with.
func ExampleParseClosePayload() {
	for _, body := range []string{"\x03\xe8bye", "", "\x03\xed", "\x03\xe8\xff"} {
		code, reason, err := codec.ParseClosePayload([]byte(body))
		var pe *codec.ProtocolError
		if errors.As(err, &pe) {
			fmt.Printf("%q: fail the connection with %d (%s)\n", body, pe.Code, pe.Code)
			continue
		}
		fmt.Printf("%q: code %d (%s), reason %q\n", body, code, code, reason)
	}
	// Output:
	// "\x03\xe8bye": code 1000 (normal closure), reason "bye"
	// "": code 1005 (no status received), reason ""
	// "\x03\xed": fail the connection with 1002 (protocol error)
	// "\x03\xe8\xff": fail the connection with 1007 (invalid frame payload data)
}

// CheckCloseReason says whether a close code and reason may be sent.
func ExampleCheckCloseReason() {
	fmt.Println(codec.CheckCloseReason(codec.CloseGoingAway, "shutting down"))
	fmt.Println(errors.Is(codec.CheckCloseReason(codec.CloseAbnormalClosure, ""), codec.ErrCloseCodeInvalid))
	payload := codec.AppendClosePayload(nil, codec.CloseGoingAway, "shutting down")
	fmt.Printf("% x\n", payload[:2])
	// Output:
	// <nil>
	// true
	// 03 e9
}

// A Reader checks every frame: here a client receives a text message whose
// second fragment breaks UTF-8, and learns the close code to send.
func ExampleReader() {
	var conn bytes.Buffer
	b := codec.Batch{Role: codec.Server}
	b.Add(false, ws.OpText, 0, []byte("caf\xc3"))
	b.Add(true, ws.OpPing, 0, []byte("are you there?"))
	b.Add(true, ws.OpContinuation, 0, []byte("X"))
	b.WriteTo(&conn)
	b.Release()

	r := codec.NewReader(&conn, codec.Decoder{Role: codec.Client}, 0)
	defer r.Release()
	for {
		f, err := r.NextFrame()
		var pe *codec.ProtocolError
		if errors.As(err, &pe) {
			fmt.Println("close with", uint16(pe.Code))
			return
		}
		fmt.Printf("opcode %d, %q\n", f.Header.OpCode, f.Payload)
	}
	// Output:
	// opcode 1, "caf\xc3"
	// opcode 9, "are you there?"
	// close with 1007
}

// UTF8 checks text that arrives in pieces and fails at the first byte that
// no continuation could make valid.
func ExampleUTF8() {
	var v codec.UTF8
	fmt.Println(v.Write([]byte("caf\xc3")), v.Done()) // a code point cut in two
	fmt.Println(v.Write([]byte("\xa9")), v.Done())    // completed: "café"
	fmt.Println(v.Write([]byte("\xf4\x90")))          // above U+10FFFF: fails now
	// Output:
	// true false
	// true true
	// false
}

// Workers mask a large client frame off the caller's goroutine.
func ExampleWorkers() {
	w := codec.NewWorkers(0, 0)
	defer w.Stop()
	payload := bytes.Repeat([]byte("x"), 1<<20)
	reply := make(chan *codec.Job, 1)
	job := &codec.Job{Role: codec.Client, Fin: true, Op: ws.OpBinary, Payload: payload, Reply: reply}
	if !w.Submit(job) {
		job.Frame = codec.EncodeFrame(job.Role, job.Fin, job.Op, job.Rsv, job.Payload) // queue full: encode inline
	} else {
		job = <-reply
	}
	fmt.Println(len(job.Frame), "bytes:", codec.HeaderLen(int64(len(payload)), true), "of header, the rest masked")
	job.ReleaseFrame()
	// Output:
	// 1048590 bytes: 14 of header, the rest masked
}

// permessage-deflate bodies: Compress a message, Inflate it back within a
// size limit. Both buffers come from the pool.
func ExampleCompress() {
	msg := []byte(strings.Repeat("a message that repeats itself. ", 100))
	z := codec.Compress(msg, flate.BestSpeed)
	fmt.Println(len(msg), "bytes compressed to fewer than 100:", len(z) < 100)
	out, err := codec.Inflate(z, 1<<20)
	fmt.Println(bytes.Equal(out, msg), err)
	_, err = codec.Inflate(z, 1000) // inflates past the limit
	fmt.Println(err)
	// Output:
	// 3100 bytes compressed to fewer than 100: true
	// true <nil>
	// websocket protocol error (close 1009 message too big): message exceeds the message size limit
}
