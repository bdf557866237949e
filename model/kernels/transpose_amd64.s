#include "textflag.h"

// func transpose8AVX(dst []float32, ldd int, src []float32, lds int, blocks int)
// Transposes an 8×(8·blocks) strip: for r < 8 and c < 8·blocks,
// dst[c·ldd + r] = src[r·lds + c]. Each 8×8 block is eight loads, the
// unpack, shuffle and lane-permute network, and eight stores; values are
// moved, never computed on.
TEXT ·transpose8AVX(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ ldd+24(FP), DX
	SHLQ $2, DX                  // dst row stride in bytes
	MOVQ src_base+32(FP), SI
	MOVQ lds+56(FP), BX
	SHLQ $2, BX                  // src row stride in bytes
	MOVQ blocks+64(FP), CX
	LEAQ (BX)(BX*2), R10         // 3·lds
	LEAQ (DX)(DX*2), R11         // 3·ldd

loop:
	TESTQ CX, CX
	JZ    done
	MOVQ SI, R8
	VMOVUPS (R8), Y0
	VMOVUPS (R8)(BX*1), Y1
	VMOVUPS (R8)(BX*2), Y2
	VMOVUPS (R8)(R10*1), Y3
	LEAQ (R8)(BX*4), R8
	VMOVUPS (R8), Y4
	VMOVUPS (R8)(BX*1), Y5
	VMOVUPS (R8)(BX*2), Y6
	VMOVUPS (R8)(R10*1), Y7
	VUNPCKLPS Y1, Y0, Y8         // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y9         // a2 b2 a3 b3 | a6 b6 a7 b7
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0   // a0 b0 c0 d0 | a4 b4 c4 d4
	VSHUFPS $0xEE, Y10, Y8, Y1   // a1 b1 c1 d1 | a5 ...
	VSHUFPS $0x44, Y11, Y9, Y2   // a2 ...
	VSHUFPS $0xEE, Y11, Y9, Y3   // a3 ...
	VSHUFPS $0x44, Y14, Y12, Y4  // e0 f0 g0 h0 | e4 ...
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8 // column 0
	VPERM2F128 $0x20, Y5, Y1, Y9 // column 1
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12 // column 4
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	MOVQ DI, R9
	VMOVUPS Y8, (R9)
	VMOVUPS Y9, (R9)(DX*1)
	VMOVUPS Y10, (R9)(DX*2)
	VMOVUPS Y11, (R9)(R11*1)
	LEAQ (R9)(DX*4), R9
	VMOVUPS Y12, (R9)
	VMOVUPS Y13, (R9)(DX*1)
	VMOVUPS Y14, (R9)(DX*2)
	VMOVUPS Y15, (R9)(R11*1)
	ADDQ $32, SI                 // next 8 source columns
	LEAQ (DI)(DX*8), DI          // next 8 destination rows
	DECQ CX
	JMP  loop

done:
	VZEROUPPER
	RET
