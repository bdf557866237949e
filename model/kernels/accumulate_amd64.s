#include "textflag.h"

// func accumulate64AVX(c, b []float32, ldb int, ls []int32, vs []float32)
// c[0:64] += vs[q]·b[ls[q]·ldb : +64] for q = 0, 1, ... in that order. The
// 64 sums stay in eight registers for the whole list; each product is
// rounded before it is added (VMULPS, VADDPS), as in gonum's axpy.
TEXT ·accumulate64AVX(SB), NOSPLIT, $0-104
	MOVQ c_base+0(FP), DI
	MOVQ b_base+24(FP), SI
	MOVQ ldb+48(FP), DX
	SHLQ $2, DX
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7

loop:
	TESTQ CX, CX
	JZ    done
	MOVLQSX (R8), AX
	IMULQ DX, AX
	ADDQ  SI, AX
	VBROADCASTSS (R9), Y8
	VMULPS 0(AX), Y8, Y9
	VMULPS 32(AX), Y8, Y10
	VMULPS 64(AX), Y8, Y11
	VMULPS 96(AX), Y8, Y12
	VADDPS Y9, Y0, Y0
	VADDPS Y10, Y1, Y1
	VADDPS Y11, Y2, Y2
	VADDPS Y12, Y3, Y3
	VMULPS 128(AX), Y8, Y13
	VMULPS 160(AX), Y8, Y14
	VMULPS 192(AX), Y8, Y15
	VMULPS 224(AX), Y8, Y9
	VADDPS Y13, Y4, Y4
	VADDPS Y14, Y5, Y5
	VADDPS Y15, Y6, Y6
	VADDPS Y9, Y7, Y7
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   loop

done:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	VZEROUPPER
	RET

// func accumulate8AVX(c, b []float32, ldb int, ls []int32, vs []float32)
// The same for c[0:8].
TEXT ·accumulate8AVX(SB), NOSPLIT, $0-104
	MOVQ c_base+0(FP), DI
	MOVQ b_base+24(FP), SI
	MOVQ ldb+48(FP), DX
	SHLQ $2, DX
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VMOVUPS 0(DI), Y0

loop8:
	TESTQ CX, CX
	JZ    done8
	MOVLQSX (R8), AX
	IMULQ DX, AX
	VBROADCASTSS (R9), Y8
	VMULPS 0(SI)(AX*1), Y8, Y9
	VADDPS Y9, Y0, Y0
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   loop8

done8:
	VMOVUPS Y0, 0(DI)
	VZEROUPPER
	RET

DATA tailmask<>+0(SB)/4, $-1
DATA tailmask<>+4(SB)/4, $-1
DATA tailmask<>+8(SB)/4, $-1
DATA tailmask<>+12(SB)/4, $-1
DATA tailmask<>+16(SB)/4, $-1
DATA tailmask<>+20(SB)/4, $-1
DATA tailmask<>+24(SB)/4, $-1
DATA tailmask<>+28(SB)/4, $-1
DATA tailmask<>+32(SB)/4, $0
DATA tailmask<>+36(SB)/4, $0
DATA tailmask<>+40(SB)/4, $0
DATA tailmask<>+44(SB)/4, $0
DATA tailmask<>+48(SB)/4, $0
DATA tailmask<>+52(SB)/4, $0
DATA tailmask<>+56(SB)/4, $0
DATA tailmask<>+60(SB)/4, $0
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

// func accumulateTailAVX(c, b []float32, ldb int, ls []int32, vs []float32)
// accumulate8AVX for the first len(c) (1 to 7) columns: the loads and the
// store are masked, so nothing past them is read or written, and the lanes
// in use see the same operations in the same order.
TEXT ·accumulateTailAVX(SB), NOSPLIT, $0-104
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), AX
	LEAQ tailmask<>(SB), R10
	MOVQ $8, R11
	SUBQ AX, R11
	VMOVUPS (R10)(R11*4), Y15    // the first len(c) lanes set
	MOVQ b_base+24(FP), SI
	MOVQ ldb+48(FP), DX
	SHLQ $2, DX
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VMASKMOVPS (DI), Y15, Y0

looptail:
	TESTQ CX, CX
	JZ    donetail
	MOVLQSX (R8), AX
	IMULQ DX, AX
	VBROADCASTSS (R9), Y8
	VMASKMOVPS (SI)(AX*1), Y15, Y9
	VMULPS Y9, Y8, Y9
	VADDPS Y9, Y0, Y0
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   looptail

donetail:
	VMASKMOVPS Y0, Y15, (DI)
	VZEROUPPER
	RET
