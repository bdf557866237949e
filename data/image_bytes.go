package data

import "bytes"

// ImageBytesToMNIST decodes a PNG or JPEG held in memory (a file's bytes,
// an upload, a browser canvas) with DecodeImage and preprocesses it with
// ImageToMNIST: 784 bytes, white digit on black. Errors wrap
// ErrImageFormat, ErrImageTooLarge or ErrBlankImage (testable with
// errors.Is), or say why the bytes are not a usable PNG or JPEG.
func ImageBytesToMNIST(b []byte) ([]byte, error) {
	return ImageBytesToMNISTWithin(b, MaxImagePixels)
}

// ImageBytesToMNISTWithin is ImageBytesToMNIST with a pixel limit of its
// own, for a caller that must spend less on an image (a server): an image
// of more than min(maxPixels, MaxImagePixels) pixels is refused from its
// header, before it is decoded, with an ErrImageTooLarge naming the limit.
func ImageBytesToMNISTWithin(b []byte, maxPixels int) ([]byte, error) {
	img, err := decodeImage(bytes.NewReader(b), min(maxPixels, MaxImagePixels))
	if err != nil {
		return nil, err
	}
	return ImageToMNIST(img)
}
