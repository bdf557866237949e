package tensorfile

import (
	"encoding/binary"
	"math"
)

// The tensors' bytes are little-endian. These convert them to and from
// values; the bits go straight through (no detour via another type would
// quieten a signalling NaN).

// Float32Bytes returns xs as F32 bytes.
func Float32Bytes(xs []float32) []byte {
	b := make([]byte, 0, 4*len(xs))
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// Float64Bytes returns xs as F64 bytes.
func Float64Bytes(xs []float64) []byte {
	b := make([]byte, 0, 8*len(xs))
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// Float32s reads F32 bytes into dst, which must hold len(b)/4 values.
func Float32s(dst []float32, b []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

// Float64s returns F64 bytes as values.
func Float64s(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}
