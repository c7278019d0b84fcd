package hub

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPublishReachesMembersOnly(t *testing.T) {
	var h Hub[int]
	a, b, c := make(chan int, 4), make(chan int, 4), make(chan int, 4)
	h.Add(a)
	h.Add(b)
	h.Add(c)
	h.Remove(b)
	h.Publish(7)
	if len(a) != 1 || <-a != 7 || len(c) != 1 || <-c != 7 {
		t.Fatal("a member did not get the message")
	}
	if len(b) != 0 {
		t.Fatal("a removed queue got the message")
	}
	h.Remove(b) // not a member: nothing happens
	h.Remove(a)
	h.Remove(c)
	h.Publish(8)
	if len(a)+len(c) != 0 {
		t.Fatal("an empty hub delivered")
	}
}
