package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{30, 30, 30, 255}
	grey  = color.RGBA{200, 200, 200, 255}
	// One colour per target, in the order measured.
	barColours = []color.RGBA{{120, 120, 120, 255}, {0, 114, 198, 255}, {230, 120, 20, 255}}
)

// writeChart draws two bar charts side by side, closed-loop throughput and open-loop
// p99 latency, one bar per target at its median with a line from the lowest to the
// highest round.
func writeChart(path string, rep *report) error {
	const w, h = 900, 420
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	title := fmt.Sprintf("signed-in GET through each proxy (%s, %d rounds)", rep.Machine, rep.Rounds)
	text(img, 20, 22, title, black)
	panel(img, image.Rect(20, 50, w/2-10, h-40), "throughput, req/s (closed loop, higher is better)", rep.Targets,
		func(t *result) []float64 { return t.Throughput }, "%.0f")
	panel(img, image.Rect(w/2+10, 50, w-20, h-40), fmt.Sprintf("p99 latency, µs at %.0f req/s (lower is better)", rep.Rate), rep.Targets,
		func(t *result) []float64 { return t.P99 }, "%.0f")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func panel(img *image.RGBA, r image.Rectangle, title string, targets []*result, values func(*result) []float64, format string) {
	text(img, r.Min.X, r.Min.Y, title, black)
	top := 0.0
	for _, t := range targets {
		if v := values(t); len(v) > 0 {
			top = max(top, slices.Max(v))
		}
	}
	if top == 0 {
		return
	}
	top *= 1.15
	plot := image.Rect(r.Min.X+10, r.Min.Y+30, r.Max.X-10, r.Max.Y-30)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)
	slot := plot.Dx() / len(targets)
	y := func(v float64) int { return plot.Max.Y - int(v/top*float64(plot.Dy())) }
	for i, t := range targets {
		v := values(t)
		if len(v) == 0 {
			continue
		}
		mid := median(slices.Clone(v))
		x0 := plot.Min.X + i*slot + slot/5
		x1 := plot.Min.X + (i+1)*slot - slot/5
		fill(img, image.Rect(x0, y(mid), x1, plot.Max.Y), barColours[i%len(barColours)])
		cx := (x0 + x1) / 2
		fill(img, image.Rect(cx-1, y(slices.Max(v)), cx+1, y(slices.Min(v))+1), black)
		fill(img, image.Rect(cx-6, y(slices.Max(v)), cx+7, y(slices.Max(v))+1), black)
		fill(img, image.Rect(cx-6, y(slices.Min(v)), cx+7, y(slices.Min(v))+1), black)
		label := fmt.Sprintf(format, mid)
		text(img, cx-len(label)*7/2, y(slices.Max(v))-6, label, black)
		text(img, cx-len(t.Name)*7/2, plot.Max.Y+18, t.Name, black)
	}
	for _, frac := range []float64{0.25, 0.5, 0.75} {
		yy := plot.Max.Y - int(frac*float64(plot.Dy()))
		for x := plot.Min.X; x < plot.Max.X; x += 4 {
			img.Set(x, yy, grey)
		}
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// text draws s with its baseline at y. basicfont has no glyph for µ; it is written u.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(ascii(s))
}

func ascii(s string) string {
	out := []rune(s)
	for i, r := range out {
		switch {
		case r == 'µ':
			out[i] = 'u'
		case r == '×':
			out[i] = 'x'
		case r > 0x7e:
			out[i] = '?'
		}
	}
	return string(out)
}
