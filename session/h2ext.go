package session

// permessage-deflate's negotiation over HTTP/2, where gobwas/ws's upgrader
// and dialer do not run: the same rules, read from the net/http headers.

import (
	"fmt"
	"strconv"
	"strings"
)

// deflateHeader is both our offer (a client's) and our answer (a
// server's): deflateParams, no context takeover either way.
const deflateHeader = "permessage-deflate;server_no_context_takeover;client_no_context_takeover" // as gobwas/ws writes it over HTTP/1.1

// offersDeflate reports whether one of the offers in a
// Sec-WebSocket-Extensions header can be accepted as deflateParams, as
// deflateExtension's negotiation would: an offer of server_max_window_bits
// is declined (compress/flate always uses a 32 KiB window) and an invalid
// offer is declined, not failed (RFC 7692 section 5).
func offersDeflate(values []string) bool {
	for _, ext := range splitExtensions(values) {
		if ext[0] != "permessage-deflate" {
			continue
		}
		if p, err := deflateParamsOf(ext[1:]); err == nil && !p.serverMaxBits {
			return true
		}
	}
	return false
}

// answeredDeflate checks a server's answer to our offer: whether it
// accepted permessage-deflate with parameters we can honour.
func answeredDeflate(values []string) (bool, error) {
	exts := splitExtensions(values)
	switch {
	case len(exts) == 0:
		return false, nil
	case len(exts) > 1 || exts[0][0] != "permessage-deflate":
		return false, fmt.Errorf("the server answered extensions that were not offered: %q", strings.Join(values, ", "))
	}
	p, err := deflateParamsOf(exts[0][1:])
	switch {
	case err != nil:
	case !p.serverNoTakeover:
		err = fmt.Errorf("the server would keep its compression context, which was offered without (server_no_context_takeover)")
	case p.clientMaxBits != 0 && p.clientMaxBits < 15:
		err = fmt.Errorf("client_max_window_bits=%d: compress/flate always uses a 32 KiB window", p.clientMaxBits)
	}
	if err != nil {
		return false, fmt.Errorf("permessage-deflate: %w", err)
	}
	return true, nil
}

type deflateOffer struct {
	serverNoTakeover bool
	serverMaxBits    bool
	clientMaxBits    int // 0: not given, or given without a value
}

// deflateParamsOf reads permessage-deflate's parameters (RFC 7692 section
// 7.1): known names, each at most once, with valid values.
func deflateParamsOf(params []string) (deflateOffer, error) {
	var o deflateOffer
	seen := map[string]bool{}
	for _, p := range params {
		k, v, hasV := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if seen[k] {
			return o, fmt.Errorf("duplicate parameter %s", k)
		}
		seen[k] = true
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasV {
				return o, fmt.Errorf("%s takes no value", k)
			}
			o.serverNoTakeover = o.serverNoTakeover || k == "server_no_context_takeover"
		case "server_max_window_bits", "client_max_window_bits":
			bits := 0
			if hasV || k == "server_max_window_bits" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 8 || n > 15 {
					return o, fmt.Errorf("invalid %s=%q", k, v)
				}
				bits = n
			}
			if k == "server_max_window_bits" {
				o.serverMaxBits = true
			} else {
				o.clientMaxBits = bits
			}
		default:
			return o, fmt.Errorf("unknown parameter %q", k)
		}
	}
	return o, nil
}

// splitExtensions splits Sec-WebSocket-Extensions values into extensions,
// each its name followed by its parameters.
func splitExtensions(values []string) [][]string {
	var exts [][]string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			parts := strings.Split(e, ";")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			if parts[0] != "" {
				exts = append(exts, parts)
			}
		}
	}
	return exts
}
