module github.com/wsactor/wsactor

go 1.26.0

require (
	github.com/gobwas/pool v0.2.1
	github.com/gobwas/ws v1.5.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
