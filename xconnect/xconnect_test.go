package xconnect_test

import (
	"os"
	"strings"
	"testing"

	"github.com/wsactor/wsactor/session"
	_ "github.com/wsactor/wsactor/xconnect"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOn: the import set GODEBUG before net/http read it, and net/http's
// server advertises extended CONNECT.
func TestOn(t *testing.T) {
	if v := os.Getenv("GODEBUG"); !strings.Contains(v, "http2xconnect=") {
		t.Fatalf("GODEBUG=%q, want http2xconnect set", v)
	}
	want := !strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=0")
	if got := session.ExtendedConnect(); got != want {
		t.Fatalf("ExtendedConnect() = %v with GODEBUG=%q", got, os.Getenv("GODEBUG"))
	}
}
