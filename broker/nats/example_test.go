package natsbroker_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/session"
)

func ExampleToken() {
	for _, room := range []string{"lobby", "chat.fr", "a b", "*", "café", ""} {
		fmt.Printf("%q\t%s\n", room, natsbroker.DefaultPrefix+"."+natsbroker.Token(room)+".t")
	}
	// Output:
	// "lobby"	wsactor.room.lobby.t
	// "chat.fr"	wsactor.room.chat~2Efr.t
	// "a b"	wsactor.room.a~20b.t
	// "*"	wsactor.room.~2A.t
	// "café"	wsactor.room.caf~C3~A9.t
	// ""	wsactor.room.~.t
}

// Two nodes share one NATS server. In a daemon, the Broker goes into
// session.RoomsOptions, and Rooms calls Subscribe, Unsubscribe and Publish;
// here the example calls them itself.
func ExampleConnect() {
	// A NATS server for the example; in production it runs on its own.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	ns.ReadyForConnections(5 * time.Second)
	url := "nats://" + ns.Addr().String()

	a, err := natsbroker.Connect(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := natsbroker.Connect(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	got := make(chan string, 1)
	b.Subscribe("lobby", func(typ session.MessageType, p []byte) {
		got <- fmt.Sprintf("%v %s", typ, p) // p is valid only during the call
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil { // the subscription is at the server
		log.Fatal(err)
	}
	if err := a.Publish("lobby", session.Text, []byte("hello")); err != nil {
		log.Fatal(err) // ErrNotConnected while NATS is down: the message is lost
	}
	fmt.Println(<-got)
	// Output: text hello
}
