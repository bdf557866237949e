package kernels

// leftPack[mask] lists, one byte each from the lowest, the positions of
// mask's set bits: the permutation that packs the lanes of an eight-wide
// vector selected by mask to its front. collect_amd64.s reads it; nothing
// writes it after initialisation.
var leftPack = func() (table [256]uint64) {
	for mask := range table {
		shift := 0
		for lane := 0; lane < 8; lane++ {
			if mask&(1<<lane) != 0 {
				table[mask] |= uint64(lane) << shift
				shift += 8
			}
		}
	}
	return table
}()
