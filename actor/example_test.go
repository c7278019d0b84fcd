package actor_test

import (
	"fmt"
	"strings"

	"github.com/wsactor/wsactor/actor"
)

// command asks for its text in upper case, answered on reply.
type command struct {
	text  string
	reply chan<- string
}

// upper is the behavior: it owns its outbox, so it needs no lock.
type upper struct {
	out actor.Outbox[string]
}

func (u *upper) Receive(c command) {
	r := actor.NewReply(c.reply)
	r.Deliver(&u.out, strings.ToUpper(c.text))
}

func (u *upper) Flush()         {}
func (u *upper) Panicked(error) {}

func Example() {
	replies := make(chan string, 1) // one slot is enough: the outbox never blocks
	a := actor.New[command](16, &upper{})
	for _, text := range []string{"hello", "actor", "world"} {
		if !a.Send(command{text: text, reply: replies}) {
			fmt.Println("mailbox full")
		}
	}
	for range 3 {
		fmt.Println(<-replies)
	}
	// Output:
	// HELLO
	// ACTOR
	// WORLD
}

// divider panics on a zero.
type divider struct{}

func (divider) Receive(n int)  { fmt.Println(12 / n) }
func (divider) Flush()         {}
func (divider) Panicked(error) {}

func ExamplePanicError() {
	a := actor.New[int](4, divider{})
	a.Send(0)
	<-a.Done() // the panic stopped the actor, and nothing else
	fmt.Println(a.Err())
	// Output:
	// actor: panic: runtime error: integer divide by zero
}
