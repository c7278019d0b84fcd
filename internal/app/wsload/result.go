package wsload

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome of a run. Its JSON form is what `make bench` reads;
// the field names are part of the interface.
type Result struct {
	Label string `json:"label"`
	Mode  Mode   `json:"mode"`
	URL   string `json:"url"`
	// URLs are the servers the fan-out members were spread over, when
	// there were several.
	URLs     []string `json:"urls,omitempty"`
	Proto    Proto    `json:"proto"`
	Conns    int      `json:"conns"`
	Inflight int      `json:"inflight"`
	Size     int      `json:"size"`
	Binary   bool     `json:"binary"`

	// DurationS is the measured time: from the end of the warm-up to the
	// last echo of a message sent in it.
	DurationS float64 `json:"duration_s"`
	// Messages is the number of messages sent after the warm-up whose echo
	// came back intact (in broadcast mode: the sender's own copies).
	Messages  int64    `json:"messages"`
	MsgsPerS  float64  `json:"msgs_per_s"`
	MBPerS    float64  `json:"mb_per_s"` // payload bytes in both directions, 1e6 bytes
	LatencyUS *Latency `json:"latency_us,omitempty"`

	// Errors counts bad echoes (wrong length, opcode or content), lost
	// messages, protocol errors, and connections that failed or that the
	// server closed before the end of the run.
	Errors     int64            `json:"errors"`
	DialErrors int64            `json:"dial_errors"`
	CloseCodes map[string]int64 `json:"close_codes"`

	Server       *ServerStats  `json:"server,omitempty"`
	ServerBefore *ServerStats  `json:"server_before,omitempty"`
	Idle         *IdleResult   `json:"idle,omitempty"`
	Fanout       *FanoutResult `json:"fanout,omitempty"`
	Storm        *StormResult  `json:"storm,omitempty"`

	DeliveriesPerS float64 `json:"deliveries_per_s,omitempty"`

	// Deliveries is the number of broadcast deliveries measured.
	Deliveries int64 `json:"-"`
	// FirstError describes the first error counted, if any.
	FirstError string `json:"-"`
}

// Latency holds latency percentiles in microseconds.
type Latency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

// IdleResult is the server's memory per idle connection. A field is nil when
// the stats endpoint did not report it before and after.
type IdleResult struct {
	Conns             int64  `json:"conns"`
	RSSPerConnBytes   *int64 `json:"rss_per_conn_bytes,omitempty"`
	HeapPerConnBytes  *int64 `json:"heap_per_conn_bytes,omitempty"`
	StackPerConnBytes *int64 `json:"stack_per_conn_bytes,omitempty"`
}

func latencyOf(h *Hist) *Latency {
	us := func(d time.Duration) int64 { return d.Round(time.Microsecond).Microseconds() }
	return &Latency{
		P50:  us(h.Quantile(0.50)),
		P90:  us(h.Quantile(0.90)),
		P99:  us(h.Quantile(0.99)),
		P999: us(h.Quantile(0.999)),
		Max:  us(h.Max()),
	}
}

// WriteSummary writes the result for a human.
func (r *Result) WriteSummary(w io.Writer) {
	kind := "binary"
	if !r.Binary {
		kind = "text"
	}
	if r.Label != "" {
		fmt.Fprintf(w, "%s\n", r.Label)
	}
	fmt.Fprintf(w, "mode %s  url %s  proto %s  c %d  inflight %d  size %d B %s\n",
		r.Mode, r.URL, r.Proto, r.Conns, r.Inflight, r.Size, kind)
	switch r.Mode {
	case ModeIdle:
		if r.Idle != nil {
			fmt.Fprintf(w, "idle     %d connections held", r.Idle.Conns)
			printPer(w, "rss", r.Idle.RSSPerConnBytes)
			printPer(w, "heap", r.Idle.HeapPerConnBytes)
			printPer(w, "stack", r.Idle.StackPerConnBytes)
			fmt.Fprintln(w)
		}
	case ModeStorm:
		if st := r.Storm; st != nil {
			fmt.Fprintf(w, "storm    %d connections in %.2f s: %.0f handshakes/s\n", st.Conns, st.StormS, st.HandshakesPerS)
			fmt.Fprintf(w, "rss      per connection:")
			printPer(w, "peak", st.PeakPerConnBytes)
			printPer(w, fmt.Sprintf("%.0fs after, no GC", st.HoldS), st.AfterPerConnBytes)
			printPer(w, "after GC", st.GCPerConnBytes)
			fmt.Fprintln(w)
			if l := st.PingUS; l != nil {
				fmt.Fprintf(w, "ping     %d of %d pongs: p50 %s  p99 %s  max %s\n", st.Pongs, st.Conns, fmtUS(l.P50), fmtUS(l.P99), fmtUS(l.Max))
			}
			fmt.Fprintf(w, "close    %d connections closed in %.2f s\n", st.Conns, st.CloseS)
		}
	default:
		fmt.Fprintf(w, "msgs     %d in %.2f s: %.0f msgs/s, %.1f MB/s\n",
			r.Messages, r.DurationS, r.MsgsPerS, r.MBPerS)
		if r.Mode == ModeBroadcast || r.Mode == ModeFanout {
			fmt.Fprintf(w, "deliver  %d: %.0f deliveries/s\n", r.Deliveries, r.DeliveriesPerS)
		}
		if f := r.Fanout; f != nil {
			fmt.Fprintf(w, "fanout   %d members (%d read, %d silent), window %d: %d of %d messages received (%.4f), %d missing, %d gaps, %d readers cut",
				f.Members, f.Readers, f.Silent, f.Window, f.Received, f.Expected, f.DeliveryRatio, f.Missing, f.Gaps, f.ReadersCut)
			if f.ServerDropped != nil {
				fmt.Fprintf(w, ", server dropped %d", *f.ServerDropped)
			}
			fmt.Fprintln(w)
			if f.Rate > 0 {
				fmt.Fprintf(w, "paced    %.0f messages/s asked\n", f.Rate)
			}
			if f.Endpoints > 1 {
				fmt.Fprintf(w, "servers  %d, the members spread over them in turn\n", f.Endpoints)
			}
			if l := f.LastLatencyUS; l != nil {
				fmt.Fprintf(w, "to last  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (publish to the last reader, %d messages)\n",
					fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), f.LastMessages)
			}
			if f.RSSPeak != nil {
				fmt.Fprintf(w, "rss      %s at the start, %s at the peak, %s at the end (%d samples)\n",
					fmtBytes(*f.RSSStart), fmtBytes(*f.RSSPeak), fmtBytes(*f.RSSEnd), len(f.Samples))
			}
		}
		if l := r.LatencyUS; l != nil {
			fmt.Fprintf(w, "latency  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
				fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max))
		}
	}
	fmt.Fprintf(w, "errors   %d  dial failures %d  close codes %s\n",
		r.Errors, r.DialErrors, fmtCodes(r.CloseCodes))
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	if r.Server != nil {
		fmt.Fprintf(w, "server  ")
		printStats(w, r.Server)
		if r.ServerBefore != nil {
			fmt.Fprintf(w, "  (before:")
			printStats(w, r.ServerBefore)
			fmt.Fprintf(w, ")")
		}
		fmt.Fprintln(w)
	}
}

func fmtUS(us int64) string {
	return time.Duration(us * int64(time.Microsecond)).String()
}

func fmtCodes(codes map[string]int64) string {
	if len(codes) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.FormatInt(codes[k], 10)
	}
	return strings.Join(parts, " ")
}

func fmtBytes(n int64) string {
	switch a := max(n, -n); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printPer(w io.Writer, what string, v *int64) {
	if v != nil {
		fmt.Fprintf(w, "  %s/conn %s", what, fmtBytes(*v))
	}
}

func printStats(w io.Writer, s *ServerStats) {
	if s.RSSBytes != nil {
		fmt.Fprintf(w, " rss %s", fmtBytes(*s.RSSBytes))
	}
	if s.HeapInuseBytes != nil {
		fmt.Fprintf(w, " heap %s", fmtBytes(*s.HeapInuseBytes))
	}
	if s.StackInuseBytes != nil {
		fmt.Fprintf(w, " stack %s", fmtBytes(*s.StackInuseBytes))
	}
	if s.Goroutines != nil {
		fmt.Fprintf(w, " goroutines %d", *s.Goroutines)
	}
}
