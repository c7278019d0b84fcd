// Package chat is wsactor's room-based chat server as a package:
// cmd/wschat runs it, and tests start it in-process.
//
// A browser (or any WebSocket client) joins a room at
// /ws?room=ROOM&name=NAME. Room and name are 1 to 32 letters, digits, '-',
// '_' or '.', with surrounding spaces trimmed; anything else gets 400 Bad
// Request before the upgrade. Every message is a JSON text message:
//
//	client -> server   {"type":"say","text":"..."}                     text: 1 to 2000 runes
//	server -> room     {"type":"said","name":"...","text":"...","at":"2006-01-02T15:04:05Z"}
//	server -> room     {"type":"joined","name":"..."}  {"type":"left","name":"..."}
//	server -> newcomer {"type":"welcome","room":"...","name":"...","members":["..."]}
//
// A newcomer gets its welcome first, with the name it was given (names are
// unique in a room: a second "alice" becomes "alice-2") and the members
// present, itself included, sorted. Then it gets every event of the room
// from that moment, in the order the server made them: joined and left for
// the others, said for everyone, the sender included. "at" is the server's
// time in UTC.
//
// The rooms are session.Rooms: a room exists while it has members, and a
// message is encoded once (session.Prepare) and queued to every member
// without a copy. Beside the rooms the Server keeps the names present in
// each, under one mutex that also orders joins and leaves against each
// other: a newcomer's welcome list and the joined and left events it gets
// afterwards always agree. A name stays taken until its "left" has been
// sent.
//
// What a client sends is checked strictly, and a violation closes that
// session, no other:
//   - a binary message: 1003 (unsupported data), the code RFC 6455 names
//     for a data type the endpoint does not accept;
//   - a text message that is not a JSON object with exactly "type": "say"
//     and a "text" string of 1 to 2000 runes: 1008 (policy violation).
//     It is well-formed WebSocket data (the session already checked its
//     UTF-8, so 1007 does not fit) of the right type, which breaks the
//     chat's own rules, and 1008 is the code for that;
//   - a message over Config.MaxMessage: 1009 (message too big), from the
//     session itself.
//
// A member that does not keep up is closed with 1013 (try again later)
// once its backlog passes the room's bound (session.CloseSlow) rather than
// left to lose messages: a member list built from joined and left events
// cannot survive a lost event, and a client that reconnects gets a fresh
// welcome.
//
// With Config.Broker, several chat servers share their rooms: a say goes
// to the room's members on every server (at most once, in order per
// sender; what a server cannot hand to the broker reaches its own members
// only). Presence is each server's own: a welcome lists the members on
// the newcomer's server, names are unique there, and joined and left
// events stay there too, so that the list and the events agree. A said
// event from another server names a member that may not be in the list,
// or share a name with one here. Listing the members of every server would
// need a presence state that survives lost messages (at most once loses
// some when the broker restarts), which the rooms do not keep. A server's
// first member of a room may miss the says of other servers sent before
// the server's subscription to the room is in place.
//
// Shutdown stops accepting, closes every member with 1001 (going away) and
// waits for the closing handshakes until its deadline, then closes what is
// left by force.
package chat
