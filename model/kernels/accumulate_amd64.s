#include "textflag.h"

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

// func accumulateRowAVX(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool)
// c[j] += vs[q]·b[ls[q]·ldb + j] for every column j < len(c) and q = 0, 1,
// ... in that order; with fromZero the sums start from 0 instead of from c.
// Each product is rounded before it is added (VMULPS, VADDPS), as in gonum's
// axpy. The columns go 64 at a time, their sums in eight registers for the
// whole list of terms, then 8 at a time, then the last few through masked
// loads and a masked store, which touch nothing past the row. One call does
// the whole row: training calls this once per row of every product, most of
// them with a handful of terms, where calls and clearing cost more than the
// arithmetic.
TEXT ·accumulateRowAVX(SB), NOSPLIT, $0-105
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), BX
	MOVQ b_base+24(FP), SI
	MOVQ ldb+48(FP), DX
	SHLQ $2, DX
	MOVBLZX fromZero+104(FP), R12

block64:
	CMPQ BX, $64
	JL   block8
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	TESTQ R12, R12
	JZ   load64
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	JMP  terms64

load64:
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7

terms64:
	TESTQ CX, CX
	JZ    store64
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
	JMP   terms64

store64:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	ADDQ $256, SI
	SUBQ $64, BX
	JMP  block64

block8:
	CMPQ BX, $8
	JL   tail
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VXORPS Y0, Y0, Y0
	TESTQ R12, R12
	JNZ  terms8
	VMOVUPS (DI), Y0

terms8:
	TESTQ CX, CX
	JZ    store8
	MOVLQSX (R8), AX
	IMULQ DX, AX
	VBROADCASTSS (R9), Y8
	VMULPS (SI)(AX*1), Y8, Y9
	VADDPS Y9, Y0, Y0
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   terms8

store8:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, BX
	JMP  block8

tail:
	TESTQ BX, BX
	JZ    done
	LEAQ tailmask<>(SB), R10
	MOVQ $8, R11
	SUBQ BX, R11
	VMOVUPS (R10)(R11*4), Y15    // the first BX lanes set
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VXORPS Y0, Y0, Y0
	TESTQ R12, R12
	JNZ  termstail
	VMASKMOVPS (DI), Y15, Y0

termstail:
	TESTQ CX, CX
	JZ    storetail
	MOVLQSX (R8), AX
	IMULQ DX, AX
	VBROADCASTSS (R9), Y8
	VMASKMOVPS (SI)(AX*1), Y15, Y9
	VMULPS Y9, Y8, Y9
	VADDPS Y9, Y0, Y0
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   termstail

storetail:
	VMASKMOVPS Y0, Y15, (DI)

done:
	VZEROUPPER
	RET
