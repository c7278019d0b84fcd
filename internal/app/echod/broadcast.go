package echod

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/wsactor/wsactor/session"
)

// Rooms: a session on /room/NAME receives every message that any member of
// room NAME sends (the sender included), on this daemon and, with
// Config.Broker, on every daemon that shares the broker. /broadcast (with
// Config.Broadcast) is the room named "broadcast". The rooms are
// session.Rooms: a room is made by its first member and dropped with its
// last; a message is encoded once per wire form; a member that does not
// keep up loses messages (counted in broadcast_dropped and on its session
// end line) instead of making every sender wait for it, and one that reads
// nothing is ended by the write timeout.

// broadcastRoom is the room of /broadcast.
const broadcastRoom = "broadcast"

// maxRoomName bounds a room's name, in bytes.
const maxRoomName = 128

type roomKey struct{}

// roomName returns the room of a request's path, /room/NAME, and whether
// it names one that may be joined.
func roomName(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, "/room/")
	return name, ok && name != "" && len(name) <= maxRoomName && utf8.ValidString(name) && !strings.Contains(name, "/")
}

// serveRoom upgrades r to a session in room name.
func (s *Server) serveRoom(w http.ResponseWriter, r *http.Request, name string) {
	r = r.WithContext(context.WithValue(r.Context(), roomKey{}, name))
	s.serveSession(w, r, &s.roomOpts, true)
}

// onRoomOpen makes the record of ss and joins its room, before ss reads a
// byte: the member gets its own first message back.
func (s *Server) onRoomOpen(ctx context.Context, ss *session.Session) {
	s.opened(ss, true)
	c := connOf(ss)
	c.room, _ = ctx.Value(roomKey{}).(string)
	if c.room == "" {
		c.room = broadcastRoom // a session made without serveRoom (AcceptConn)
	}
	s.rooms.Join(c.room, ss)
}

// onRoom sends m to every member of the sender's room.
func (s *Server) onRoom(ss *session.Session, m session.Message) {
	size := int64(len(m.Payload))
	c := connOf(ss)
	c.n.msgsIn.Add(1)
	c.n.bytesIn.Add(size)
	n, _ := s.rooms.Publish(c.room, m.Type, m.Payload) // a broker's loss is counted by Rooms
	m.Release()
	c.n.msgsOut.Add(int64(n))
	c.n.bytesOut.Add(int64(n) * size)
}
