#include "textflag.h"

// func accumulateRowAVX512(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool)
// accumulateRowAVX with sixteen columns to a register: the columns go 128 at
// a time (a hidden layer of 128 in one pass over the terms, where the
// eight-column kernel takes two), then 64, then 16, then the last few through
// a masked load and store, which touch nothing past the row. Each product is
// rounded before it is added (VMULPS, VADDPS), in the same order, so the
// sums are bit-identical to the other kernels'. Only Z0-Z15 are used, so
// that VZEROUPPER leaves no wide state behind.
TEXT ·accumulateRowAVX512(SB), NOSPLIT, $0-105
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), BX
	MOVQ b_base+24(FP), SI
	MOVQ ldb+48(FP), DX
	SHLQ $2, DX
	MOVBLZX fromZero+104(FP), R12

block128:
	CMPQ BX, $128
	JL   block64
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	TESTQ R12, R12
	JZ   load128
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	JMP  terms128

load128:
	VMOVUPS 0(DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	VMOVUPS 256(DI), Z4
	VMOVUPS 320(DI), Z5
	VMOVUPS 384(DI), Z6
	VMOVUPS 448(DI), Z7

terms128:
	TESTQ CX, CX
	JZ    store128
	MOVLQSX (R8), AX
	IMULQ DX, AX
	ADDQ  SI, AX
	VBROADCASTSS (R9), Z8
	VMULPS 0(AX), Z8, Z9
	VMULPS 64(AX), Z8, Z10
	VMULPS 128(AX), Z8, Z11
	VMULPS 192(AX), Z8, Z12
	VADDPS Z9, Z0, Z0
	VADDPS Z10, Z1, Z1
	VADDPS Z11, Z2, Z2
	VADDPS Z12, Z3, Z3
	VMULPS 256(AX), Z8, Z13
	VMULPS 320(AX), Z8, Z14
	VMULPS 384(AX), Z8, Z15
	VMULPS 448(AX), Z8, Z9
	VADDPS Z13, Z4, Z4
	VADDPS Z14, Z5, Z5
	VADDPS Z15, Z6, Z6
	VADDPS Z9, Z7, Z7
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   terms128

store128:
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VMOVUPS Z4, 256(DI)
	VMOVUPS Z5, 320(DI)
	VMOVUPS Z6, 384(DI)
	VMOVUPS Z7, 448(DI)
	ADDQ $512, DI
	ADDQ $512, SI
	SUBQ $128, BX
	JMP  block128

block64:
	CMPQ BX, $64
	JL   block16
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	TESTQ R12, R12
	JZ   load64
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	JMP  terms64

load64:
	VMOVUPS 0(DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3

terms64:
	TESTQ CX, CX
	JZ    store64
	MOVLQSX (R8), AX
	IMULQ DX, AX
	ADDQ  SI, AX
	VBROADCASTSS (R9), Z8
	VMULPS 0(AX), Z8, Z9
	VMULPS 64(AX), Z8, Z10
	VMULPS 128(AX), Z8, Z11
	VMULPS 192(AX), Z8, Z12
	VADDPS Z9, Z0, Z0
	VADDPS Z10, Z1, Z1
	VADDPS Z11, Z2, Z2
	VADDPS Z12, Z3, Z3
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   terms64

store64:
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, DI
	ADDQ $256, SI
	SUBQ $64, BX
	JMP  block64

block16:
	CMPQ BX, $16
	JL   tail
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VPXORD Z0, Z0, Z0
	TESTQ R12, R12
	JNZ  terms16
	VMOVUPS (DI), Z0

terms16:
	TESTQ CX, CX
	JZ    store16
	MOVLQSX (R8), AX
	IMULQ DX, AX
	VBROADCASTSS (R9), Z8
	VMULPS (SI)(AX*1), Z8, Z9
	VADDPS Z9, Z0, Z0
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   terms16

store16:
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $16, BX
	JMP  block16

tail:
	TESTQ BX, BX
	JZ    done
	MOVQ BX, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1                 // the first BX lanes
	MOVQ ls_base+56(FP), R8
	MOVQ ls_len+64(FP), CX
	MOVQ vs_base+80(FP), R9
	VPXORD Z0, Z0, Z0
	TESTQ R12, R12
	JNZ  termstail
	VMOVUPS.Z (DI), K1, Z0

termstail:
	TESTQ CX, CX
	JZ    storetail
	MOVLQSX (R8), AX
	IMULQ DX, AX
	VBROADCASTSS (R9), Z8
	VMOVUPS.Z (SI)(AX*1), K1, Z9
	VMULPS Z9, Z8, Z9
	VADDPS Z9, Z0, Z0
	ADDQ  $4, R8
	ADDQ  $4, R9
	DECQ  CX
	JMP   termstail

storetail:
	VMOVUPS Z0, K1, (DI)

done:
	VZEROUPPER
	RET
