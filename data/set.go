package data

// Shape of an MNIST image and number of digit classes.
const (
	ImageRows, ImageCols = 28, 28
	ImageSize            = ImageRows * ImageCols // 784
	NumClasses           = 10
)

// Set is a labelled image set kept as raw bytes (never a float copy: memory
// matters, the whole training set as float32 would be 188 MB).
type Set struct {
	Images []byte // Len()*ImageSize pixels, row-major, image after image
	Labels []byte // one label 0..9 per image
}

// Len is the number of images in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Labels)
}

// Subset returns a Set viewing the first n images (for tests/short runs).
// n is clamped to 0..Len(). The result shares memory with s; its slices are
// capped so that appending to them can never overwrite s.
func (s *Set) Subset(n int) *Set {
	n = max(0, min(n, s.Len()))
	if n == 0 {
		return &Set{Images: []byte{}, Labels: []byte{}}
	}
	return &Set{
		Images: s.Images[: n*ImageSize : n*ImageSize],
		Labels: s.Labels[:n:n],
	}
}
