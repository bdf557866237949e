package data

import "errors"

// Error kinds returned (wrapped) by the IDX reader, LoadSet and Ensure: the
// messages returned to callers wrap a kind with details, and callers match
// the kind with errors.Is.
var (
	ErrEmpty     = errors.New("empty file")
	ErrMagic     = errors.New("wrong magic number")
	ErrDims      = errors.New("wrong number of dimensions")
	ErrSize      = errors.New("size out of range")
	ErrTruncated = errors.New("truncated")
	ErrTrailing  = errors.New("trailing data")
	ErrLabel     = errors.New("label out of range")
	ErrCount     = errors.New("image and label counts differ")
	ErrShape     = errors.New("images are not 28x28")
	ErrDigest    = errors.New("SHA-256 mismatch")
	ErrFileSize  = errors.New("wrong file size")
)
