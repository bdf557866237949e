package tensorfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ChecksumKey is the metadata key of a sealed file's checksum.
const ChecksumKey = "checksum"

// ErrChecksum is Verify's answer to a file whose checksum does not match.
var ErrChecksum = errors.New("checksum mismatch: the file is damaged or truncated")

// Checksum is the hex SHA-256 of the metadata (every key but ChecksumKey,
// sorted, one "key=value" line each) followed by the data. A flipped bit
// anywhere but in the JSON's layout is caught by it; damage to the layout
// fails the parse.
func Checksum(meta map[string]string, data []byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if k != ChecksumKey {
			fmt.Fprintf(h, "%s=%s\n", k, meta[k])
		}
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks the checksum EncodeSealed put in the file's metadata.
func (f *File) Verify() error {
	if f.Meta[ChecksumKey] != Checksum(f.Meta, f.Data) {
		return ErrChecksum
	}
	return nil
}
