#include "textflag.h"

DATA lanes<>+0(SB)/4, $0
DATA lanes<>+4(SB)/4, $1
DATA lanes<>+8(SB)/4, $2
DATA lanes<>+12(SB)/4, $3
DATA lanes<>+16(SB)/4, $4
DATA lanes<>+20(SB)/4, $5
DATA lanes<>+24(SB)/4, $6
DATA lanes<>+28(SB)/4, $7
DATA lanes<>+32(SB)/4, $8
DATA lanes<>+36(SB)/4, $9
DATA lanes<>+40(SB)/4, $10
DATA lanes<>+44(SB)/4, $11
DATA lanes<>+48(SB)/4, $12
DATA lanes<>+52(SB)/4, $13
DATA lanes<>+56(SB)/4, $14
DATA lanes<>+60(SB)/4, $15
GLOBL lanes<>(SB), RODATA|NOPTR, $64

// func collectAVX(a []float32, alpha float32, base int32, ls []int32, vs []float32) int
// For j in order, where t = alpha*a[j] is not zero (or is NaN), stores base+j
// in ls and t in vs, packed from index 0; returns how many. len(a) must be a
// multiple of 8, and ls and vs at least as long as a: each step stores eight
// lanes, of which only the selected ones are kept.
//
// Eight elements a step, without branches: the compare's bit mask picks,
// from leftPack, the permutation that moves the selected lanes to the front.
// A data-dependent branch per nonzero cost more than the rest of the scan.
TEXT ·collectAVX(SB), NOSPLIT, $0-88
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Y0
	MOVQ ls_base+32(FP), DI
	MOVQ vs_base+56(FP), R8
	LEAQ ·leftPack(SB), R11
	XORQ R9, R9
	VXORPS Y1, Y1, Y1
	MOVL base+28(FP), DX
	VMOVD DX, X6
	VPBROADCASTD X6, Y6
	VPADDD lanes<>(SB), Y6, Y6   // indices of the current eight
	MOVL $8, DX
	VMOVD DX, X8
	VPBROADCASTD X8, Y8

loop:
	CMPQ CX, $8
	JL   done
	VMULPS (SI), Y0, Y2
	VCMPPS $4, Y1, Y2, Y3        // not-equal, unordered: NaN is kept
	VMOVMSKPS Y3, AX
	VPMOVZXBD (R11)(AX*8), Y4
	VPERMPS Y2, Y4, Y5
	VPERMD Y6, Y4, Y7
	VMOVUPS Y5, (R8)(R9*4)
	VMOVDQU Y7, (DI)(R9*4)
	POPCNTL AX, AX
	ADDQ AX, R9
	VPADDD Y8, Y6, Y6
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  loop

done:
	MOVQ R9, ret+80(FP)
	VZEROUPPER
	RET

// func collectAVX512(a []float32, alpha float32, base int32, ls []int32, vs []float32) int
// collectAVX sixteen elements a step, len(a) a multiple of 16: the compare
// writes a mask register and VCOMPRESSPS/VPCOMPRESSD pack the selected lanes
// to the front, with no table.
TEXT ·collectAVX512(SB), NOSPLIT, $0-88
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Z0
	MOVQ ls_base+32(FP), DI
	MOVQ vs_base+56(FP), R8
	XORQ R9, R9
	VPXORD Z1, Z1, Z1
	MOVL base+28(FP), DX
	VPBROADCASTD DX, Z6
	VPADDD lanes<>(SB), Z6, Z6   // indices of the current sixteen
	MOVL $16, DX
	VPBROADCASTD DX, Z8

loop16:
	CMPQ CX, $16
	JL   done16
	VMULPS (SI), Z0, Z2
	VCMPPS $4, Z1, Z2, K1        // not-equal, unordered: NaN is kept
	VCOMPRESSPS.Z Z2, K1, Z5
	VPCOMPRESSD.Z Z6, K1, Z7
	VMOVUPS Z5, (R8)(R9*4)
	VMOVDQU32 Z7, (DI)(R9*4)
	KMOVW K1, AX
	POPCNTL AX, AX
	ADDQ AX, R9
	VPADDD Z8, Z6, Z6
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  loop16

done16:
	MOVQ R9, ret+80(FP)
	VZEROUPPER
	RET
