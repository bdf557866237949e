package data

// Error is the kind of a data error. It is a string type so the kinds below
// can be constants (no package-level mutable state) and still be matched with
// errors.Is; the messages returned to callers wrap a kind with details.
type Error string

func (e Error) Error() string { return string(e) }

// Error kinds returned (wrapped) by the IDX reader, LoadSet and Ensure.
const (
	ErrEmpty     Error = "empty file"
	ErrMagic     Error = "wrong magic number"
	ErrDims      Error = "wrong number of dimensions"
	ErrSize      Error = "size out of range"
	ErrTruncated Error = "truncated"
	ErrTrailing  Error = "trailing data"
	ErrLabel     Error = "label out of range"
	ErrCount     Error = "image and label counts differ"
	ErrShape     Error = "images are not 28x28"
	ErrDigest    Error = "SHA-256 mismatch"
	ErrFileSize  Error = "wrong file size"
)
