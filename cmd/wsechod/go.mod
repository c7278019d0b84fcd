module github.com/wsactor/wsactor/cmd/wsechod

go 1.26.0

require (
	github.com/gobwas/ws v1.5.0
	github.com/wsactor/wsactor v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
)

// The runtime is built from this repository.
replace github.com/wsactor/wsactor => ../..
