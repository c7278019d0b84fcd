package main

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// writeSVG draws one horizontal bar chart per scenario (each on its own
// scale): the median of each server, with a whisker from min to max.
// wsactor is orange (its daemons on NATS amber), the TCP ceiling grey, the
// other libraries blue.
func writeSVG(w io.Writer, rep *report) {
	const (
		width    = 960
		left     = 140 // server names
		barMax   = 600
		barH     = 14
		rowH     = 20
		titleH   = 26
		panelGap = 18
		top      = 56
	)
	var body strings.Builder
	y := top
	for _, sr := range rep.Scenarios {
		var rows []*serverReport
		maxV := 0.0
		for _, s := range sr.Servers {
			if s.Summary == nil {
				continue
			}
			rows = append(rows, s)
			maxV = max(maxV, s.Summary.Primary.Max)
		}
		if len(rows) == 0 || maxV <= 0 {
			continue
		}
		unit := "msgs/s"
		format := si
		switch sr.Mode {
		case string(modeBroadcast), string(modeFanout):
			unit = "deliveries/s"
		case string(modeStorm):
			unit = "handshakes/s"
		case string(modeIdle):
			unit = "KiB of RSS per connection, lower is better"
			format = func(v float64) string { return fmt.Sprintf("%.2f KiB", v/1024) }
		}
		fmt.Fprintf(&body, `<text x="10" y="%d" class="t">%s <tspan class="u">(%s)</tspan></text>`+"\n",
			y+16, esc(sr.Title), esc(unit))
		y += titleH
		for _, s := range rows {
			st := s.Summary.Primary
			scale := func(v float64) float64 { return float64(barMax) * v / maxV }
			color := "#4c6ef5"
			switch s.Name {
			case "wsactor", "wsactor-group", "wsechod-1":
				color = "#e8590c"
			case "wsechod-3-nats":
				color = "#f59f00"
			case "tcp":
				color = "#868e96"
			}
			fmt.Fprintf(&body, `<text x="%d" y="%d" class="n">%s</text>`+"\n", left-8, y+barH-2, esc(s.Name))
			fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: median %s, min %s, max %s</title></rect>`+"\n",
				left, y, max(scale(st.Median), 1), barH, color, esc(s.Name), esc(format(st.Median)), esc(format(st.Min)), esc(format(st.Max)))
			if st.Max > st.Min {
				mid := y + barH/2
				fmt.Fprintf(&body, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="w"/>`+"\n",
					float64(left)+scale(st.Min), mid, float64(left)+scale(st.Max), mid)
			}
			label := format(st.Median)
			if r := s.Summary.VsTCP; r != nil && s.Name != "tcp" {
				label += fmt.Sprintf("  %.2fx tcp", *r)
			}
			fmt.Fprintf(&body, `<text x="%.1f" y="%d" class="v">%s</text>`+"\n", float64(left)+scale(st.Max)+6, y+barH-2, esc(label))
			y += rowH
		}
		y += panelGap
	}
	height := y + 10
	m := rep.Machine
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", width, height, width, height)
	fmt.Fprint(w, `<style>.h{font-size:16px;font-weight:bold}.s{font-size:11px;fill:#555}.t{font-size:13px;font-weight:bold}.u{font-weight:normal;fill:#555}.n{font-size:12px;text-anchor:end}.v{font-size:11px;fill:#333}.w{stroke:#222;stroke-width:1.5}</style>`+"\n")
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="10" y="22" class="h">wsactor and other Go WebSocket servers on loopback: medians, whiskers from min to max</text>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="40" class="s">%s · %d CPUs · %s · %s · %d round(s) of %gs</text>`+"\n",
		esc(rep.Started), m.CPUs, esc(m.CPUModel), esc(m.GoVersion), rep.Config.Rounds, rep.Config.DurationS)
	fmt.Fprint(w, body.String())
	fmt.Fprintln(w, "</svg>")
}

func esc(s string) string { return html.EscapeString(s) }
