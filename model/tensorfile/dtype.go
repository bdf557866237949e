package tensorfile

import "math/bits"

// elemSizes are the bytes per element of safetensors' dtypes.
var elemSizes = map[string]uint64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"F16": 2, "BF16": 2, "I16": 2, "U16": 2,
	"F32": 4, "I32": 4, "U32": 4,
	"F64": 8, "I64": 8, "U64": 8,
}

// byteSize is the size in bytes of a tensor of dtype and shape, and false
// for an unknown dtype, a negative dimension or a size past 2^64.
func byteSize(dtype string, shape []int) (uint64, bool) {
	n, ok := elemSizes[dtype]
	if !ok {
		return 0, false
	}
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}
