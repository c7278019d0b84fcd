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
package actor
