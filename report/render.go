package report

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
)

// The page's parts: the template, and the style and script it inlines.
var (
	//go:embed page.html
	pageHTML string
	//go:embed report.css
	styleCSS string
	//go:embed report.js
	scriptJS string
)

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// csp lets the page run its own script and style, recognised by their hashes, and nothing
// else: no request leaves the page, and markup that got into it could not run a script.
var csp = "default-src 'none'; img-src data:; script-src " + cspHash(scriptJS) +
	"; style-src " + cspHash(styleCSS)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// view is what the template executes on.
type view struct {
	*page
	CSP    string
	Style  template.CSS
	Script template.JS
	Data   template.JS // the timeline as JSON, safe inside a <script> element
}

func render(w io.Writer, p *page) error {
	tl := p.Timeline
	if tl != nil && tl.NumBars == 0 {
		tl = nil // nothing to draw
	}
	data, err := embedJSON(struct {
		Timeline *timeline `json:"timeline"`
	}{tl})
	if err != nil {
		return err
	}
	return pageTemplate.Execute(w, view{page: p, CSP: csp, Style: template.CSS(styleCSS),
		Script: template.JS(scriptJS), Data: template.JS(data)})
}

// embedJSON encodes v as JSON that can stand inside a <script> element: encoding/json already
// writes <, > and & in strings as \u escapes (RawMessage values too); the replacement makes
// sure of it, and is safe because outside strings JSON has no <.
func embedJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(b, []byte("<"), []byte(`\u003c`)), nil
}
