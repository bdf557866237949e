package data

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"
)

// segment is a pen stroke from (x0, y0) to (x1, y1) in unit coordinates.
type segment struct{ x0, y0, x1, y1 float64 }

// four is a handwritten-looking 4: the slanted stroke, the bar, the stem.
var four = []segment{{0.62, 0.08, 0.12, 0.64}, {0.12, 0.64, 0.86, 0.64}, {0.62, 0.08, 0.64, 0.95}}

// drawDigit renders strokes as paper reflectance (0.92, a white page in a
// photo) with ink (0.12) where the pen went, anti-aliased: size×size
// pixels, the digit in the middle 60% of it.
func drawDigit(strokes []segment, size int) []float64 {
	const paper, ink = 0.92, 0.12
	r := make([]float64, size*size)
	pen := 0.045 * float64(size) // stroke half-width
	for y := range size {
		for x := range size {
			px, py := float64(x)+0.5, float64(y)+0.5
			d := math.Inf(1)
			for _, s := range strokes {
				ax, ay := (0.2+0.6*s.x0)*float64(size), (0.2+0.6*s.y0)*float64(size)
				bx, by := (0.2+0.6*s.x1)*float64(size), (0.2+0.6*s.y1)*float64(size)
				dx, dy := bx-ax, by-ay
				t := min(max(((px-ax)*dx+(py-ay)*dy)/(dx*dx+dy*dy), 0), 1)
				d = min(d, math.Hypot(px-ax-t*dx, py-ay-t*dy))
			}
			cover := min(max(pen-d+0.5, 0), 1)
			r[y*size+x] = paper + (ink-paper)*cover
		}
	}
	return r
}

// photograph lights the reflectance r with light(u, v) (u, v in 0..1 across
// the picture), adds Gaussian noise of the given deviation and quantises to
// 8 bits, as a phone camera would.
func photograph(r []float64, size int, light func(u, v float64) float64, noise float64, seed uint64) *image.Gray {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewGray(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			u, v := (float64(x)+0.5)/float64(size), (float64(y)+0.5)/float64(size)
			val := r[y*size+x]*light(u, v) + noise*rng.NormFloat64()
			img.Pix[y*img.Stride+x] = uint8(math.Round(255 * min(max(val, 0), 1)))
		}
	}
	return img
}

// centreAndBox are the centre of mass and ink box of a 28×28 result.
func centreAndBox(px []byte) (cx, cy float64, b [4]int) {
	var sum float64
	for i, v := range px {
		sum += float64(v)
		cx += float64(v) * float64(i%ImageCols)
		cy += float64(v) * float64(i/ImageCols)
	}
	b[0], b[1], b[2], b[3] = box(px)
	return cx / sum, cy / sum, b
}

// correlation is Pearson's correlation of two 28×28 results.
func correlation(a, b []byte) float64 {
	var ma, mb float64
	for i := range a {
		ma, mb = ma+float64(a[i]), mb+float64(b[i])
	}
	ma, mb = ma/float64(len(a)), mb/float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := float64(a[i])-ma, float64(b[i])-mb
		sab, saa, sbb = sab+da*db, saa+da*da, sbb+db*db
	}
	return sab / math.Sqrt(saa*sbb)
}

// TestUnevenLight photographs the same 4 under even light and under light
// that falls off strongly toward a corner or the edges, with camera noise:
// the 28×28 image must be nearly the same (correlation, mean difference),
// with its ink box and centre where the evenly lit one has them, not
// dragged toward the shade. (Before the background was fitted, the shaded
// corner counted as ink: the box spanned the whole picture.)
func TestUnevenLight(t *testing.T) {
	const size, noise = 200, 0.02
	r := drawDigit(four, size)
	// Chalk on a blackboard: light on dark, like MNIST itself.
	chalk := make([]float64, len(r))
	for i, v := range r {
		chalk[i] = 1.04 - v
	}
	cases := []struct {
		name  string
		light func(u, v float64) float64
		chalk bool
	}{
		// Falling to a quarter of the light in the bottom-right corner.
		{"dark corner", func(u, v float64) float64 { return 1 - 0.75*math.Pow((u+v)/2, 2) }, false},
		// The same, from the top-left: the darkest corner is the first
		// pixel read, and part of the border.
		{"dark top-left corner", func(u, v float64) float64 { return 1 - 0.75*math.Pow((2-u-v)/2, 2) }, false},
		// A soft-edged shadow over the bottom-right third, down to 30%.
		{"soft shadow", func(u, v float64) float64 {
			return 0.3 + 0.7/(1+math.Exp(((u+v)/2-0.72)/0.06))
		}, false},
		// Lens vignetting: the corners at 35% of the centre.
		{"vignette", func(u, v float64) float64 {
			return 1 - 1.3*((u-0.5)*(u-0.5)+(v-0.5)*(v-0.5))
		}, false},
		// Dim all over, and darker at one side.
		{"dim and uneven", func(u, v float64) float64 { return 0.45 - 0.2*u }, false},
		// So dim that the paper is darker than mid-grey everywhere.
		{"very dim", func(u, v float64) float64 { return 0.35 - 0.15*v }, false},
		{"chalk, dark corner", func(u, v float64) float64 { return 1 - 0.75*math.Pow((u+v)/2, 2) }, true},
		{"chalk, lit corner", func(u, v float64) float64 { return 0.8 + 0.35*math.Pow((u+v)/2, 2) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refl := r
			if c.chalk {
				refl = chalk
			}
			even, err := ImageToMNIST(photograph(refl, size, func(u, v float64) float64 { return 1 }, noise, 1))
			if err != nil {
				t.Fatal(err)
			}
			ecx, ecy, ebox := centreAndBox(even)
			got, err := ImageToMNIST(photograph(refl, size, c.light, noise, 2))
			if err != nil {
				t.Fatal(err)
			}
			corr := correlation(got, even)
			var diff float64
			for i := range got {
				diff += math.Abs(float64(got[i]) - float64(even[i]))
			}
			diff /= float64(len(got))
			cx, cy, b := centreAndBox(got)
			t.Logf("correlation %.3f, mean difference %.1f grey levels, centre (%.1f, %.1f) vs (%.1f, %.1f), box %v vs %v",
				corr, diff, cx, cy, ecx, ecy, b, ebox)
			if corr < 0.9 {
				t.Errorf("correlation with the evenly lit digit %.3f, want >= 0.9", corr)
			}
			if diff > 20 {
				t.Errorf("mean difference %.1f grey levels, want <= 20", diff)
			}
			if math.Hypot(cx-ecx, cy-ecy) > 1 {
				t.Errorf("centre of mass (%.1f, %.1f), evenly lit (%.1f, %.1f): more than a pixel apart", cx, cy, ecx, ecy)
			}
			for i := range b {
				if d := b[i] - ebox[i]; d < -1 || d > 1 {
					t.Errorf("ink box %v, evenly lit %v: more than a pixel apart", b, ebox)
					break
				}
			}
		})
	}
}

// cropGray is the part of img inside r, as an image of its own at (0, 0).
func cropGray(img *image.Gray, r image.Rectangle) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := range r.Dy() {
		copy(out.Pix[y*out.Stride:(y+1)*out.Stride], img.Pix[(r.Min.Y+y)*img.Stride+r.Min.X:])
	}
	return out
}

// inkBounds is the bounding box of the pixels of img darker than paper by
// a fifth of the range: the drawn digit's ink.
func inkBounds(img *image.Gray) image.Rectangle {
	var r image.Rectangle
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			if img.Pix[y*img.Stride+x] < 184 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

// TestCloseCrop reads digits cropped close to their ink, as a photo
// trimmed to the digit or a scan of one box of a form is: ink, with its
// anti-aliased edges, covers much of the picture (up to 86 %), and a 1
// leaves paper only in its outer columns, or only a pixel's width of it. Each must give
// what the same digit with paper around it gives. (When the background and
// its noise were measured over all the pixels, the ink counted as paper
// once it covered half of them: such pictures were refused as blank.)
func TestCloseCrop(t *testing.T) {
	const size = 200
	one := []segment{{0.5, 0.05, 0.5, 0.95}}
	cases := []struct {
		name    string
		strokes []segment
		margin  int // pixels of paper kept around the ink, each side
		noise   float64
	}{
		{"4, no paper around the ink", four, 0, 0},
		{"4, a pixel of paper", four, 1, 0},
		{"4, photographed, two pixels of paper", four, 2, 0.02},
		{"1, a pixel of paper", one, 1, 0},
		{"1, photographed, two pixels of paper", one, 2, 0.02},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			photo := photograph(drawDigit(c.strokes, size), size, func(u, v float64) float64 { return 1 }, c.noise, 1)
			whole, err := ImageToMNIST(photo)
			if err != nil {
				t.Fatal(err)
			}
			cropped := cropGray(photo, inkBounds(photo).Inset(-c.margin))
			ink := 0
			for _, v := range cropped.Pix {
				if v < 200 {
					ink++
				}
			}
			got, err := ImageToMNIST(cropped)
			if err != nil {
				t.Fatalf("%d%% of the picture is ink: %v", 100*ink/len(cropped.Pix), err)
			}
			if corr := correlation(got, whole); corr < 0.95 {
				t.Errorf("%d%% of the picture is ink: correlation with the whole picture's digit %.3f, want >= 0.95", 100*ink/len(cropped.Pix), corr)
			}
		})
	}
}
