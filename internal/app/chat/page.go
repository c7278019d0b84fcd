package chat

import _ "embed"

// page is the chat's page: its style and script are inline and it loads
// nothing from elsewhere, so a browser needs nothing but the server.
//
//go:embed web/index.html
var page []byte
