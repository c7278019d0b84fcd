package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsactor/wsactor/session"
)

// A server that refuses the upgrade: the *HandshakeError carries its
// status, its headers and the start of its body.
func ExampleHandshakeError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Why", "no")
		http.Error(w, "go away", http.StatusForbidden)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	var he *session.HandshakeError
	if !errors.As(err, &he) || he.Response == nil {
		fmt.Println("unexpected:", err)
		return
	}
	body, _ := io.ReadAll(he.Response.Body)
	fmt.Println(errors.Is(err, session.ErrHandshake))
	fmt.Println(he.Response.Status)
	fmt.Println(he.Response.Header.Get("X-Why"))
	fmt.Printf("%q\n", body)
	// Output:
	// true
	// 403 Forbidden
	// no
	// "go away\n"
}
