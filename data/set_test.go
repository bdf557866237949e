package data

import "testing"

func TestSubset(t *testing.T) {
	s := &Set{Images: make([]byte, 5*ImageSize), Labels: []byte{0, 1, 2, 3, 4}}
	for i := range s.Images {
		s.Images[i] = byte(i / ImageSize)
	}
	tests := []struct{ n, want int }{
		{-1, 0}, {0, 0}, {1, 1}, {3, 3}, {5, 5}, {6, 5}, {1 << 40, 5},
	}
	for _, tt := range tests {
		sub := s.Subset(tt.n)
		if sub.Len() != tt.want || len(sub.Images) != tt.want*ImageSize {
			t.Errorf("Subset(%d): Len %d with %d pixels, want %d images", tt.n, sub.Len(), len(sub.Images), tt.want)
			continue
		}
		if tt.want == 0 {
			continue
		}
		if &sub.Images[0] != &s.Images[0] {
			t.Errorf("Subset(%d) copied the pixels instead of viewing them", tt.n)
		}
		if cap(sub.Images) != len(sub.Images) || cap(sub.Labels) != len(sub.Labels) {
			t.Errorf("Subset(%d): capacity not capped, appends would overwrite the parent", tt.n)
		}
		if last := sub.Images[len(sub.Images)-1]; int(last) != tt.want-1 {
			t.Errorf("Subset(%d): last image is %d", tt.n, last)
		}
	}
}

func TestLenNil(t *testing.T) {
	var s *Set
	if s.Len() != 0 || s.Subset(3).Len() != 0 {
		t.Error("nil set is not empty")
	}
}
