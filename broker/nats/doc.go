// Package natsbroker carries wsactor's rooms between nodes over NATS: a
// session.Broker, so that the session.Rooms of several daemons connected to
// one NATS server or cluster are one room space. It is a module of its own
// (github.com/wsactor/wsactor/broker/nats), so that the runtime keeps its
// three dependencies.
//
//	b, err := natsbroker.Connect("nats://127.0.0.1:4222", nil)
//	...
//	rooms := session.NewRooms(&session.RoomsOptions{Broker: b})
//	rooms.Join("lobby", s)                   // the node subscribes to the room
//	rooms.Publish("lobby", session.Text, p)  // local members, then the other nodes
//
// A node subscribes to a room while the room has local members, as
// Centrifugo's nodes do to its channels. Each room has its own subjects,
// Prefix.TOKEN.t for text and Prefix.TOKEN.b for binary, where TOKEN is the
// room's name escaped into one NATS token (see Token): a dot, a space, a
// wildcard or any other byte outside A-Z a-z 0-9 - _ is written ~XX, so no
// name is a wildcard and no two names share a subject. The payload travels
// unchanged; the message type is the subject's last token.
//
// Delivery is at most once, in order per publisher, with losses counted
// (the Broker type says how). A node keeps serving its local members while
// NATS is down, reconnects by itself and subscribes again; what was
// published meanwhile is lost for the other nodes, and counted.
package natsbroker
