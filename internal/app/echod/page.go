package echod

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

// The pages are self-contained: their style and script are inline, so a
// browser needs nothing but the daemon.
//
//go:embed web/index.html web/selftest.html
var webFS embed.FS

var pages = template.Must(template.ParseFS(webFS, "web/*.html"))

// renderPages renders the pages once, for the echo endpoint at path.
func renderPages(path string) (page, selftest []byte) {
	return render("index.html", path), render("selftest.html", path)
}

func render(name, path string) []byte {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, struct{ Path string }{path}); err != nil {
		panic("echod: page " + name + ": " + err.Error()) // the embedded templates are fixed: a failure is a bug
	}
	return b.Bytes()
}

func servePage(w http.ResponseWriter, r *http.Request, page []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept, Upgrade")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(page)
}
