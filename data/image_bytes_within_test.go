package data

import (
	"bytes"
	"errors"
	"image/color"
	"strings"
	"testing"
)

func TestImageBytesToMNISTWithin(t *testing.T) {
	digit := encodePNG(t, bar(60, 80, 20, 10, 12, 60, color.White, color.Black)) // 4,800 pixels
	want, err := ImageBytesToMNIST(digit)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		in        []byte
		maxPixels int
		says      string // in the ErrImageTooLarge error; "" for none
	}{
		{"at the limit", digit, 60 * 80, ""},
		{"one pixel over", digit, 60*80 - 1, "4799 pixels"},
		{"a header over a low limit", hugePNG(t, 2049, 2048), 2048 * 2048, "2049×2048 pixels, more than the 4194304 pixels"},
		{"a header at a low limit", hugePNG(t, 2048, 2048), 2048 * 2048, "decode"},
		{"a limit above MaxImagePixels is MaxImagePixels", hugePNG(t, 4097, 4096), 1 << 40, "4097×4096 pixels, more than the 16777216 pixels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ImageBytesToMNISTWithin(c.in, c.maxPixels)
			switch {
			case c.says == "":
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("error %v; want ImageBytesToMNIST's pixels", err)
				}
			case c.says == "decode":
				// Within the limit, so decoded: the 1×1 pixels do not
				// match the header.
				if err == nil || errors.Is(err, ErrImageTooLarge) {
					t.Errorf("error %v, want a decoding error", err)
				}
			case !errors.Is(err, ErrImageTooLarge) || !strings.Contains(err.Error(), c.says):
				t.Errorf("error %v, want ErrImageTooLarge saying %q", err, c.says)
			}
		})
	}
}
