package data

import "bytes"

// ImageBytesToMNIST decodes a PNG or JPEG held in memory (a file's bytes,
// an upload, a browser canvas) with DecodeImage and preprocesses it with
// ImageToMNIST: 784 bytes, white digit on black. Errors wrap
// ErrImageFormat, ErrImageTooLarge or ErrBlankImage (testable with
// errors.Is), or say why the bytes are not a usable PNG or JPEG.
func ImageBytesToMNIST(b []byte) ([]byte, error) {
	img, err := DecodeImage(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return ImageToMNIST(img)
}
