// Package actor is wsactor's actor kernel, and knows nothing of WebSockets:
// a bounded mailbox with an urgent lane, a run loop that owns its state and
// contains panics, an outbox that delivers replies without ever blocking the
// actor, and a lifecycle (a done channel and a terminal error).
//
// An Actor has no goroutine while its mailbox is empty. The first message
// into an empty mailbox starts one; it handles every message that is ready,
// urgent ones first, and exits when the mailbox is empty again (the way
// Proto.Actor's and Akka's dispatchers schedule actors). An idle actor costs
// its struct and its lanes' buffers; the buffers a burst grew are kept while
// the actor stays busy and dropped once a few quiet wake-ups in a row show
// it is not.
//
// A producer that makes bursts of messages on a goroutine of its own (a
// connection's reader whose handler answers every message of one read) can
// run the actor itself instead: Hold makes Send queue without starting a
// goroutine, and RunHeld delivers what was queued on the caller's
// goroutine, one set and one Flush for the whole burst, waiting first for
// a goroutine that is running the actor so that the producer never outruns
// it (backpressure). Kick ends a Hold early, for a producer that is about
// to wait for the actor. Nothing in this protocol knows what the messages
// are; the session package is its user.
package actor
