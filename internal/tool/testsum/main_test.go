package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDigest(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   counts
		ok     bool
		print  []string // what the digest must print
		hide   []string // what it must not
	}{
		{
			name: "passing package with a subtest and a skip",
			stream: `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"quiet log\n"}
{"Action":"pass","Package":"p","Test":"TestA/sub"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p","Elapsed":1.5}
`,
			want:  counts{pass: 2, skip: 1},
			ok:    true,
			print: []string{"ok  \tp\t1.500s"},
			hide:  []string{"quiet log"},
		},
		{
			name: "a failing test prints its output",
			stream: `{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: boom\n"}
{"Action":"fail","Package":"p","Test":"TestA"}
{"Action":"fail","Package":"p","Elapsed":0.1}
`,
			want:  counts{fail: 1},
			print: []string{"a_test.go:9: boom", "FAIL\tp"},
		},
		{
			name: "a package that does not build counts as a failure",
			stream: `{"Action":"build-output","Package":"p","Output":"p.go:1: syntax error\n"}
{"Action":"fail","Package":"p","Elapsed":0}
`,
			want:  counts{fail: 1},
			print: []string{"syntax error", "FAIL\tp"},
		},
		{
			name:   "lines that are not events are passed through",
			stream: "vet: something is wrong\n",
			ok:     true,
			print:  []string{"vet: something is wrong"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			got, ok := digest(strings.NewReader(tt.stream), &out)
			if got != tt.want || ok != tt.ok {
				t.Errorf("digest = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			for _, s := range tt.print {
				if !strings.Contains(out.String(), s) {
					t.Errorf("digest does not print %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.hide {
				if strings.Contains(out.String(), s) {
					t.Errorf("digest prints %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestTally(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tally")
	for _, c := range []counts{{pass: 3}, {fail: 1, skip: 2}, {pass: 1}} {
		if err := addTally(path, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readTally(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (counts{pass: 4, fail: 1, skip: 2}); got != want {
		t.Errorf("tally = %+v, want %+v", got, want)
	}
	os.WriteFile(path, []byte("x y z\n"), 0o644)
	if _, err := readTally(path); err == nil {
		t.Error("a malformed tally was read without an error")
	}
}
