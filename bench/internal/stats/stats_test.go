package stats

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHandler(t *testing.T) {
	for _, target := range []string{"/debug/vars", "/debug/vars?gc=1"} {
		rec := httptest.NewRecorder()
		Handler(Source{Conns: func() int64 { return 7 }}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf(
				"%s: status %d",
				target, rec.Code)
		}
		var v map[string]int64
		err := json.Unmarshal(rec.Body.Bytes(), &v)
		if err != nil {
			t.Fatalf(
				"%s: %v",
				target, err)
		}
		if _, ok := v["dropped"]; ok {
			t.Errorf(
				"%s: dropped served for a server that does not count drops",
				target)
		}
		if v["conns"] != 7 {
			t.Errorf(
				"%s: conns = %d; want 7",
				target, v["conns"])
		}
		for _, k := range []string{"rss_bytes", "heap_inuse_bytes", "stack_inuse_bytes", "goroutines"} {
			if v[k] <= 0 {
				t.Errorf(
					"%s: %s = %d; want > 0",
					target, k, v[k])
			}
		}
	}
}

func TestHandlerDropped(t *testing.T) {
	rec := httptest.NewRecorder()
	src := Source{
		Conns:   func() int64 { return 2 },
		Dropped: func() int64 { return 0 },
	}
	Handler(src).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/vars", nil))
	var v map[string]int64
	err := json.Unmarshal(rec.Body.Bytes(), &v)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := v["dropped"]
	if !ok || d != 0 {
		t.Fatalf(
			"dropped = %d (present %v); want 0, present: a count of 0 is a figure",
			d, ok)
	}
}

func TestDefaultAddr(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		want    string
		wantErr bool
	}{
		{
			name: "ipv4",
			addr: "127.0.0.1:9001",
			want: "127.0.0.1:10001",
		},
		{
			name: "ipv6",
			addr: "[::1]:8080",
			want: "[::1]:9080",
		},
		{
			name:    "port too high",
			addr:    "127.0.0.1:65000",
			wantErr: true,
		},
		{
			name:    "no port",
			addr:    "127.0.0.1",
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultAddr(tc.addr)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf(
					"DefaultAddr(%q) = %q, %v; want %q, error %v",
					tc.addr, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
