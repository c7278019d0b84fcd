module github.com/wsactor/wsactor/interop

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/wsactor/wsactor v0.0.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/gobwas/ws v1.5.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/wsactor/wsactor => ../
