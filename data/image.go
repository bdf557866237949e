package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"math"

	"mnist/data/fileio"

	// The decoders -predict accepts: image.Decode picks by the file's magic
	// bytes, not its name, so a .jpg that is really a PNG still works.
	_ "image/jpeg"
	_ "image/png"
)

// Preprocessing constants, chosen to match how MNIST itself was made: each
// digit's bounding box scaled (anti-aliased) to fit 20×20, then placed in
// 28×28 so that its centre of mass is at the centre.
const (
	digitBox = 20
	// inkThreshold is the ink level (0..1, after background removal) above
	// which a pixel counts for the bounding box: low enough to keep faint
	// anti-aliased edges, high enough to ignore JPEG ringing and paper grain.
	inkThreshold = 0.1
)

// ErrBlankImage is returned for an image with no pixel that stands out from
// its background: any digit predicted for it would be noise, so it is
// refused rather than classified.
var ErrBlankImage = errors.New("no digit found: the image is blank (every pixel is the background colour)")

// LoadImages reads PNG or JPEG files and turns each into one MNIST-style
// 28×28 image (see ImageToMNIST), in order. The labels are all zero: the
// Set is for Backend.Predict, which ignores them. The error names the first
// file that cannot be used.
func LoadImages(paths []string) (*Set, error) {
	s := &Set{Images: make([]byte, 0, len(paths)*ImageSize), Labels: make([]byte, len(paths))}
	for _, p := range paths {
		px, err := LoadImage(p)
		if err != nil {
			return nil, err
		}
		s.Images = append(s.Images, px...)
	}
	return s, nil
}

// LoadImage decodes one PNG or JPEG file and preprocesses it with
// ImageToMNIST; errors name the file.
func LoadImage(path string) ([]byte, error) {
	b, err := fileio.ReadFile(context.Background(), path, maxImageFileBytes)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, fmt.Errorf("image %s: not a PNG or JPEG file", path)
		}
		return nil, fmt.Errorf("image %s: decode: %w", path, err)
	}
	px, err := ImageToMNIST(img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	return px, nil
}

// ImageToMNIST turns any image into 784 bytes laid out like an MNIST image
// (white digit on black, row-major):
//
//  1. grey by luminance (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B), with
//     transparent pixels taken as white paper;
//  2. inverted when the mean of the border pixels is above mid-grey, since
//     MNIST digits are light on dark and most photos and drawings are not;
//  3. the background level (the border mean) subtracted and the rest
//     stretched to 0..1, so grey paper becomes black;
//  4. cropped to the bounding box of the ink, scaled by area averaging
//     (each output pixel the mean of the source area it covers, so thin
//     strokes fade rather than vanish) to fit 20×20 with the aspect ratio
//     kept;
//  5. placed in 28×28 with its centre of mass at the centre, as MNIST was
//     made, shifted back inside the frame where that would cut it off.
//
// An empty image is an error, and so is a blank one (ErrBlankImage).
func ImageToMNIST(img image.Image) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("empty image (%d×%d pixels)", max(w, 0), max(h, 0))
	}
	grey := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// RGBA is alpha-premultiplied, 16 bits: adding the missing
			// (1-alpha) of white composites the pixel over white paper.
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			lum := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 0xffff
			grey[y*w+x] = lum + 1 - float64(a)/0xffff
		}
	}

	bg := borderMean(grey, w, h)
	if bg > 0.5 {
		for i, v := range grey {
			grey[i] = 1 - v
		}
		bg = 1 - bg
	}
	// bg <= 0.5 here, so the division is safe and the stretch at most 2×.
	for i, v := range grey {
		grey[i] = min(max((v-bg)/(1-bg), 0), 1)
	}

	x0, y0, x1, y1, ok := inkBox(grey, w, h)
	if !ok {
		return nil, ErrBlankImage
	}
	bw, bh := x1-x0, y1-y0
	scale := float64(digitBox) / float64(max(bw, bh))
	tw := max(1, min(digitBox, int(math.Round(float64(bw)*scale))))
	th := max(1, min(digitBox, int(math.Round(float64(bh)*scale))))
	patch := areaResize(grey, w, x0, y0, bw, bh, tw, th)

	// Centre of mass of the scaled digit, in patch coordinates (pixel
	// centres at +0.5); its ink is non-zero since the box holds ink.
	var sum, sx, sy float64
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			v := patch[y*tw+x]
			sum += v
			sx += v * (float64(x) + 0.5)
			sy += v * (float64(y) + 0.5)
		}
	}
	ox, oy := (ImageCols-tw)/2, (ImageRows-th)/2
	if sum > 0 {
		ox = int(math.Round(float64(ImageCols)/2 - sx/sum))
		oy = int(math.Round(float64(ImageRows)/2 - sy/sum))
	}
	ox = min(max(ox, 0), ImageCols-tw)
	oy = min(max(oy, 0), ImageRows-th)

	out := make([]byte, ImageSize)
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			out[(oy+y)*ImageCols+ox+x] = byte(math.Round(255 * patch[y*tw+x]))
		}
	}
	return out, nil
}

// borderMean is the mean of the outermost rows and columns: the background
// colour, on the assumption (true of MNIST and of any framed drawing) that
// the digit does not fill the edges.
func borderMean(g []float64, w, h int) float64 {
	var sum float64
	n := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if y == 0 || y == h-1 || x == 0 || x == w-1 {
				sum += g[y*w+x]
				n++
			}
		}
	}
	return sum / float64(n)
}

// inkBox is the bounding box [x0,x1)×[y0,y1) of the pixels above
// inkThreshold; ok is false when there are none.
func inkBox(g []float64, w, h int) (x0, y0, x1, y1 int, ok bool) {
	x0, y0 = w, h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if g[y*w+x] > inkThreshold {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x+1), max(y1, y+1)
			}
		}
	}
	return x0, y0, x1, y1, x1 > x0
}

// areaResize scales the bw×bh region at (x0, y0) of g (row stride w) to
// tw×th by area averaging: each output pixel is the mean of the source
// area it covers, fractional pixels weighted by their covered fraction.
// Downscaling thus keeps every stroke's ink; upscaling repeats pixels.
func areaResize(g []float64, w, x0, y0, bw, bh, tw, th int) []float64 {
	out := make([]float64, tw*th)
	fx := float64(bw) / float64(tw)
	fy := float64(bh) / float64(th)
	for oy := 0; oy < th; oy++ {
		sy0, sy1 := float64(oy)*fy, float64(oy+1)*fy
		for ox := 0; ox < tw; ox++ {
			sx0, sx1 := float64(ox)*fx, float64(ox+1)*fx
			var sum, area float64
			for sy := int(sy0); sy < bh && float64(sy) < sy1; sy++ {
				wy := math.Min(sy1, float64(sy+1)) - math.Max(sy0, float64(sy))
				for sx := int(sx0); sx < bw && float64(sx) < sx1; sx++ {
					wx := math.Min(sx1, float64(sx+1)) - math.Max(sx0, float64(sx))
					sum += wx * wy * g[(y0+sy)*w+x0+sx]
					area += wx * wy
				}
			}
			if area > 0 {
				out[oy*tw+ox] = sum / area
			}
		}
	}
	return out
}
