package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"mnist/data/fileio"
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

// MaxImagePixels is the largest image -predict decodes, 4096×4096 pixels
// (16.7 megapixels, more than a 12-megapixel phone photo). The size is read
// from the file's header before anything is decoded: a PNG of a few hundred
// bytes can claim a million pixels a side, and decoding one of 20000×20000
// took 3.5 GB. At the limit -predict peaks at about 300 MB.
const MaxImagePixels = 4096 * 4096

// Error kinds of LoadImage and ImageBytesToMNIST, returned wrapped with
// details.
var (
	ErrImageFormat   = errors.New("not a PNG or JPEG image")
	ErrImageTooLarge = errors.New("image too large")
)

// ErrBlankImage is returned for an image with no pixel that stands out from
// its background: any digit predicted for it would be noise, so it is
// refused rather than classified.
var ErrBlankImage = errors.New("no digit found: the image is blank (nothing in it stands out from the background)")

// The two formats -predict reads, recognised by their first bytes (never by
// the file name, so a .jpg that is really a PNG still works).
const (
	pngMagic  = "\x89PNG\r\n\x1a\n"
	jpegMagic = "\xff\xd8"
)

// LoadImages reads PNG or JPEG files and turns each into one MNIST-style
// 28×28 image (see ImageToMNIST), in order. The labels are all zero: the
// Set is for model.Predict, which ignores them. The error names the first
// file that cannot be used.
func LoadImages(ctx context.Context, paths []string) (*Set, error) {
	s := &Set{Images: make([]byte, 0, len(paths)*ImageSize), Labels: make([]byte, len(paths))}
	for _, p := range paths {
		px, err := LoadImage(ctx, p)
		if err != nil {
			return nil, err
		}
		s.Images = append(s.Images, px...)
	}
	return s, nil
}

// LoadImage reads one PNG or JPEG file and preprocesses it as
// ImageBytesToMNIST does. Its errors have one form, "image: cannot read
// PATH: cause" or "image: cannot decode PATH: cause". A cancelled ctx
// stops the read.
func LoadImage(ctx context.Context, path string) ([]byte, error) {
	b, err := fileio.ReadFile(ctx, path, maxImageFileBytes)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	px, err := ImageBytesToMNIST(b)
	if err != nil {
		return nil, fmt.Errorf("image: cannot decode %s: %w", path, err)
	}
	return px, nil
}

// DecodeImage decodes a PNG or JPEG image and nothing else. image.Decode
// would pick any decoder linked into the program, and dependencies link in
// GIF and TIFF, whose decoders return images that panic when read (a TIFF
// with palette indices past its palette). The header is read first and an
// image over MaxImagePixels refused before its pixels are decoded. The
// image is returned as it is displayed: turned or mirrored as its EXIF
// orientation says (a phone photo is stored sideways with a tag saying
// so), read from a JPEG's APP1 segment or from a PNG's eXIf chunk when that
// comes before the image data (IDAT); a missing or damaged EXIF block
// leaves it as stored.
func DecodeImage(r io.ReadSeeker) (image.Image, error) {
	return decodeImage(r, MaxImagePixels)
}

// decodeImage is DecodeImage with the pixel limit as a parameter: the fuzz
// test lowers it, so that each input decodes in microseconds.
func decodeImage(r io.ReadSeeker, maxPixels int) (image.Image, error) {
	var magic [8]byte
	n, err := io.ReadFull(r, magic[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	var findOrientation func(head []byte) int
	switch head := string(magic[:n]); {
	case head == pngMagic:
		decodeConfig, decode, findOrientation = png.DecodeConfig, png.Decode, pngOrientation
	case len(head) >= len(jpegMagic) && head[:len(jpegMagic)] == jpegMagic:
		decodeConfig, decode, findOrientation = jpeg.DecodeConfig, jpeg.Decode, jpegOrientation
	default:
		if kind := otherFormat(magic[:n]); kind != "" {
			return nil, fmt.Errorf("%w (it is a %s file)", ErrImageFormat, kind)
		}
		return nil, ErrImageFormat
	}
	// readOrientation leaves r at its start, where decodeConfig reads.
	orientation, err := readOrientation(r, findOrientation)
	if err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(r)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("decode: the header gives a size of %d×%d pixels", cfg.Width, cfg.Height)
	}
	if cfg.Width > maxPixels/cfg.Height {
		return nil, fmt.Errorf("%w: %d×%d pixels, more than the %d pixels (%.1f megapixels) an image may have", ErrImageTooLarge, cfg.Width, cfg.Height, maxPixels, float64(maxPixels)/1e6)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	img, err := decode(r)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return orient(img, orientation), nil
}

// otherFormat names an image format -predict does not read, from its magic
// bytes, for a more helpful error; "" when it is none of them.
func otherFormat(head []byte) string {
	for _, f := range []struct{ magic, name string }{
		{"GIF8", "GIF"}, {"II*\x00", "TIFF"}, {"MM\x00*", "TIFF"}, {"BM", "BMP"}, {"RIFF", "RIFF (WebP?)"},
	} {
		if bytes.HasPrefix(head, []byte(f.magic)) {
			return f.name
		}
	}
	return ""
}

// ImageToMNIST turns any image into 784 bytes laid out like an MNIST image
// (white digit on black, row-major):
//
//  1. grey by luminance (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B), with
//     transparent pixels taken as white paper, or as black where the
//     border is transparent and the strokes light (greyLevels, which reads
//     any image without panicking), and a frame around the paper, such as
//     a box on a form, cut off (trimFrame);
//  2. inverted when the ink is darker than the background, since MNIST
//     digits are light on dark and most photos and drawings are not
//     (inkIsDark);
//  3. the background removed: a smooth surface fitted to the background's
//     level across the image (uneven light, a shadow toward a corner) is
//     subtracted, the rest stretched to 0..1 by the local paper brightness,
//     and what does not rise above the photo's noise set to 0
//     (removeBackground). An evenly lit clean image gets the constant
//     background of its border, exactly as a plain subtraction would;
//  4. cropped to the bounding box of the ink (pixels above inkThreshold
//     with an inked neighbour, so that a lone speck of noise is no ink),
//     scaled by area averaging (each output pixel the mean of the source
//     area it covers, so thin strokes fade rather than vanish) to fit 20×20
//     with the aspect ratio kept;
//  5. placed in 28×28 with its centre of mass at the centre, as MNIST was
//     made, shifted back inside the frame where that would cut it off.
//
// An empty image is an error, and so is a blank one (ErrBlankImage). Every
// output byte comes from a value clamped to 0..1: nothing a decoder returns
// can make it panic or produce NaN.
func ImageToMNIST(img image.Image) ([]byte, error) {
	if img == nil {
		return nil, errors.New("empty image (no pixels)")
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("empty image (%d×%d pixels)", max(w, 0), max(h, 0))
	}
	if w > MaxImagePixels/h {
		return nil, fmt.Errorf("%w: %d×%d pixels, the limit is %d pixels", ErrImageTooLarge, w, h, MaxImagePixels)
	}
	grey, w, h := trimFrame(greyLevels(img), w, h)
	if inkIsDark(grey, w, h) {
		for i, v := range grey {
			grey[i] = 1 - v
		}
	}
	removeBackground(grey, w, h)

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
			out[(oy+y)*ImageCols+ox+x] = byte(math.Round(255 * min(max(patch[y*tw+x], 0), 1)))
		}
	}
	return out, nil
}

// greyLevels is the image's luminance, 0 (black) to 1 (white), row-major,
// composited over the level transparentLevel chooses.
func greyLevels(img image.Image) []float64 {
	b := img.Bounds()
	grey := make([]float64, b.Dx()*b.Dy())
	under := transparentLevel(img)
	forEachColour(img, func(i int, c color.Color) { grey[i] = colorGrey(c, under) })
	return grey
}

// transparentLevel is the grey level transparent pixels are composited
// over: white paper (1), unless the image's border is mostly transparent
// and what is opaque is light. The border is taken for background, as by
// inkIsDark; where it is transparent, the opaque pixels are the ink, drawn
// on nothing, and must end up on a background they stand out from: light
// strokes on a transparent canvas (a dark-theme drawing app's export)
// over white paper would vanish.
func transparentLevel(img image.Image) float64 {
	// Opaque scans the pixels' alpha quickly, but a palette image's panics
	// on a nil colour in its palette: that one is read below.
	if _, paletted := img.(*image.Paletted); !paletted {
		if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
			return 1
		}
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var borderAlpha, lum, alpha float64
	forEachColour(img, func(i int, c color.Color) {
		r, g, bl, a := c.RGBA()
		lum += luminance(r, g, bl)
		alpha += float64(a) / 0xffff
		if x, y := i%w, i/w; x == 0 || y == 0 || x == w-1 || y == h-1 {
			borderAlpha += float64(a) / 0xffff
		}
	})
	borderPixels := 2*(w+h) - 4
	if w == 1 || h == 1 {
		borderPixels = w * h
	}
	if borderAlpha >= 0.5*float64(borderPixels) || alpha == 0 || lum/alpha < 0.5 {
		return 1
	}
	return 0
}

// forEachColour calls f with each pixel's colour, row by row, i being
// y*width+x. It reads palette images by index, with a check: an index past
// the palette (which decoders can return; the image's own At then panics),
// or a pixel missing from a short pixel slice, is taken as opaque black,
// as Go's PNG decoder pads a short palette. A nil colour is black too.
func forEachColour(img image.Image, f func(i int, c color.Color)) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	colour := func(x, y int) color.Color { return img.At(b.Min.X+x, b.Min.Y+y) }
	if p, ok := img.(*image.Paletted); ok {
		colour = func(x, y int) color.Color {
			if i := p.PixOffset(b.Min.X+x, b.Min.Y+y); i >= 0 && i < len(p.Pix) && int(p.Pix[i]) < len(p.Palette) {
				return p.Palette[p.Pix[i]]
			}
			return nil
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := colour(x, y)
			if c == nil {
				c = color.Black
			}
			f(y*w+x, c)
		}
	}
}

// colorGrey is one colour's luminance over a background of grey level
// under (0..1), clamped to 0..1 so that no colour can give a value outside.
func colorGrey(c color.Color, under float64) float64 {
	// RGBA is alpha-premultiplied, 16 bits: adding the missing (1-alpha)
	// of the background composites the pixel over it.
	r, g, bl, a := c.RGBA()
	return min(max(luminance(r, g, bl)+(1-float64(a)/0xffff)*under, 0), 1)
}

// luminance is the ITU-R BT.601 luminance, 0..1, of 16-bit (premultiplied)
// channels, in integers so that white is exactly 1.
func luminance(r, g, b uint32) float64 {
	return float64(299*r+587*g+114*b) / (1000 * 0xffff)
}

// inkBox is the bounding box [x0,x1)×[y0,y1) of the ink: the pixels above
// inkThreshold that have at least one of their eight neighbours above it
// too. A stroke, however thin, always has; a lone pixel of noise or dust
// has not, and would otherwise stretch the box to a corner. ok is false
// when there is no ink.
func inkBox(g []float64, w, h int) (x0, y0, x1, y1 int, ok bool) {
	x0, y0 = w, h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if g[y*w+x] > inkThreshold && inkedNeighbour(g, w, h, x, y) {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x+1), max(y1, y+1)
			}
		}
	}
	return x0, y0, x1, y1, x1 > x0
}

func inkedNeighbour(g []float64, w, h, x, y int) bool {
	for ny := max(y-1, 0); ny <= min(y+1, h-1); ny++ {
		for nx := max(x-1, 0); nx <= min(x+1, w-1); nx++ {
			if (nx != x || ny != y) && g[ny*w+nx] > inkThreshold {
				return true
			}
		}
	}
	return false
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
