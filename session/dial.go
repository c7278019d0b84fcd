package session

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/wsactor/wsactor/codec"
)

// Dial opens a WebSocket session to a ws:// or wss:// URL (the client
// role). The TCP dial, the TLS handshake and the opening handshake together
// are bounded by the handshake timeout and by ctx; ctx does not bound the
// session afterwards. A server that answers with another status than 101
// gives an error that wraps ErrHandshake and names the status.
func Dial(ctx context.Context, url string, opts *Options) (*Session, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	d := ws.Dialer{
		Timeout:   opts.handshakeTimeout(),
		Protocols: opts.Subprotocols,
		TLSConfig: opts.TLSConfig,
		NetDial:   opts.NetDial,
	}
	if opts.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(opts.Header)
	}
	if opts.Compression != nil {
		d.Extensions = append(d.Extensions, deflateParams.Option())
	}
	if d.NetDial == nil {
		var nd net.Dialer
		d.NetDial = nd.DialContext
	}
	conn, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		if status, ok := err.(ws.StatusError); ok {
			return nil, fmt.Errorf("%w: %s answered %d %s", ErrHandshake, url, int(status), http.StatusText(int(status)))
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrHandshake, url, err)
	}
	deflate := false
	for _, opt := range hs.Extensions {
		var p wsflate.Parameters
		err := p.Parse(opt)
		switch {
		case err == nil && !p.ServerNoContextTakeover:
			err = fmt.Errorf("the server would keep its compression context, which was offered without (server_no_context_takeover)")
		case err == nil && p.ClientMaxWindowBits.Defined() && p.ClientMaxWindowBits < 15:
			err = fmt.Errorf("client_max_window_bits=%d: compress/flate always uses a 32 KiB window", p.ClientMaxWindowBits)
		}
		if err != nil {
			if br != nil {
				ws.PutReader(br)
			}
			conn.Close()
			return nil, fmt.Errorf("%w: %s: permessage-deflate: %v", ErrHandshake, url, err)
		}
		deflate = true
	}
	var initial []byte
	if br != nil {
		if n := br.Buffered(); n > 0 {
			initial, _ = br.Peek(n)
			initial = append([]byte(nil), initial...)
		}
		ws.PutReader(br)
	}
	return newSession(conn, codec.Client, opts, hs.Protocol, deflate, initial), nil
}
