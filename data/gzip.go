package data

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// decompress returns a reader of the IDX bytes. Gzip is recognised by its
// magic bytes, not by a file name, so a raw file named .gz still loads.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	switch {
	case len(head) == 0 && errors.Is(err, io.EOF):
		return nil, ErrEmpty
	case len(head) < 2 && err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, gzipHeaderErr(err)
	}
	zr.Multistream(false)
	return &gzipMembers{br: br, zr: zr}, nil
}

// gzipMembers reads concatenated gzip members (what `cat a.gz b.gz` makes)
// itself instead of leaving that to gzip.Reader, so that bytes after the
// last member that are not gzip are reported as trailing data rather than
// as a broken gzip header or a truncated file.
type gzipMembers struct {
	br *bufio.Reader
	zr *gzip.Reader
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if n > 0 {
			return n, nil // the next Read returns EOF again
		}
		// End of a member, checksum verified. Another member, or the end?
		next, _ := g.br.Peek(2)
		switch {
		case len(next) == 0:
			return 0, io.EOF
		case len(next) < 2 || next[0] != 0x1f || next[1] != 0x8b:
			return 0, fmt.Errorf("%w after the gzip stream", ErrTrailing)
		}
		if err := g.zr.Reset(g.br); err != nil {
			return 0, gzipHeaderErr(err)
		}
		g.zr.Multistream(false)
	}
}

func gzipHeaderErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w gzip header", ErrTruncated)
	}
	return fmt.Errorf("gzip: %w", err)
}
