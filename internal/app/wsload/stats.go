package wsload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"
)

// ServerStats is what the server's stats endpoint said about itself. A field
// is nil when the endpoint did not report it.
type ServerStats struct {
	RSSBytes *int64 `json:"rss_bytes,omitempty"`
	// RSSPeakBytes is the process's peak RSS so far (VmHWM).
	RSSPeakBytes    *int64 `json:"rss_peak_bytes,omitempty"`
	HeapInuseBytes  *int64 `json:"heap_inuse_bytes,omitempty"`
	StackInuseBytes *int64 `json:"stack_inuse_bytes,omitempty"`
	Goroutines      *int64 `json:"goroutines,omitempty"`
	Conns           *int64 `json:"conns,omitempty"`
	// Dropped is what the server says it dropped for members that did not
	// keep up (broadcasts not delivered), for servers that count it.
	Dropped *int64 `json:"dropped,omitempty"`
}

const (
	statsTimeout  = 10 * time.Second
	maxStatsBytes = 4 << 20
)

// fetchStats reads the stats endpoint at raw with gc=1 added to its query,
// so that the server collects garbage and returns memory to the OS before it
// measures. It reads the top-level numeric keys it knows and ignores the
// rest.
func fetchStats(ctx context.Context, client *http.Client, raw string) (*ServerStats, error) {
	return fetchStatsGC(ctx, client, raw, true)
}

// fetchStatsGC is fetchStats, with gc=1 only when gc is set: a sample
// taken under load leaves the server's garbage collector alone.
func fetchStatsGC(ctx context.Context, client *http.Client, raw string, gc bool) (*ServerStats, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	if gc {
		q := u.Query()
		q.Set("gc", "1")
		u.RawQuery = q.Encode()
	}

	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stats: GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatsBytes))
	if err != nil {
		return nil, fmt.Errorf("stats: GET %s: %w", u, err)
	}
	return parseStats(body)
}

// parseStats decodes a stats document.
func parseStats(body []byte) (*ServerStats, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("stats: want a JSON object: %w", err)
	}
	var st ServerStats
	for key, dst := range map[string]**int64{
		"rss_bytes":         &st.RSSBytes,
		"rss_peak_bytes":    &st.RSSPeakBytes,
		"heap_inuse_bytes":  &st.HeapInuseBytes,
		"stack_inuse_bytes": &st.StackInuseBytes,
		"goroutines":        &st.Goroutines,
		"conns":             &st.Conns,
		"dropped":           &st.Dropped,
	} {
		raw, ok := doc[key]
		if !ok {
			continue
		}
		var f float64
		if json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		v := int64(math.Round(f))
		*dst = &v
	}
	return &st, nil
}

// perConn returns (after-before)/n when both are known.
func perConn(before, after *int64, n int64) *int64 {
	if before == nil || after == nil || n <= 0 {
		return nil
	}
	v := (*after - *before) / n
	return &v
}
