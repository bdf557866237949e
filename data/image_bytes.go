package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
)

// MaxPixelsDecoded is the most pixels (width × height) ImageBytesToMNIST
// decodes. A few kilobytes of PNG can declare a 50,000×50,000 image; its
// size is read from the header first, so such a file costs nothing. 4096²
// is more than a phone photo (12 megapixels) needs.
const MaxPixelsDecoded = 4096 * 4096

// ErrTooManyPixels is returned for an image whose header declares more than
// MaxPixelsDecoded pixels.
var ErrTooManyPixels = fmt.Errorf("image too large: more than %d pixels", MaxPixelsDecoded)

// ImageBytesToMNIST decodes a PNG or JPEG held in memory (an upload, a
// browser canvas) and preprocesses it with ImageToMNIST, exactly as
// LoadImage does a file: 784 bytes, white digit on black. Errors are
// ErrTooManyPixels, ErrBlankImage (both testable with errors.Is), or a
// description of why the bytes are not a usable PNG or JPEG.
func ImageBytesToMNIST(b []byte) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, errors.New("not a PNG or JPEG image")
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	// Other packages linked into the binary may register more formats
	// (GIF, BMP...): the documented inputs are PNG and JPEG only.
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("not a PNG or JPEG image (%s)", format)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixelsDecoded {
		return nil, fmt.Errorf("%w (%d×%d)", ErrTooManyPixels, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return ImageToMNIST(img)
}
