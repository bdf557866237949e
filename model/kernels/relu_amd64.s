#include "textflag.h"

// func biasReLUAVX(h, b []float32, relu bool)
// h[j] += b[j], then with relu h[j] *= (h[j] >= 0 ? 1 : 0), eight at a
// time; len(h) = len(b), a multiple of 8. The compare is ordered (NaN is
// not >= 0) and the product is a plain VMULPS, as the Go loop computes.
TEXT ·biasReLUAVX(SB), NOSPLIT, $0-49
	MOVQ h_base+0(FP), DI
	MOVQ h_len+8(FP), CX
	MOVQ b_base+24(FP), SI
	MOVBLZX relu+48(FP), R8
	MOVL $0x3f800000, AX // 1.0
	MOVL AX, X15
	VBROADCASTSS X15, Y15
	VXORPS Y14, Y14, Y14

loop:
	CMPQ CX, $8
	JL   done
	VMOVUPS (DI), Y0
	VADDPS (SI), Y0, Y0
	TESTQ R8, R8
	JZ   store
	VCMPPS $29, Y14, Y0, Y1 // Y0 >= 0, ordered, quiet (GE_OQ)
	VANDPS Y15, Y1, Y1      // 1.0 or 0
	VMULPS Y1, Y0, Y0

store:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  loop

done:
	VZEROUPPER
	RET

// func reluGradAVX(dz, y, dy []float32)
// dz[i] = (0 <= bits(y[i]) <= 0x7f800000 ? 1 : 0) * dy[i], eight at a
// time; all of len(dz), a multiple of 8. The bit patterns are compared as
// signed integers: a set sign bit makes one negative.
TEXT ·reluGradAVX(SB), NOSPLIT, $0-72
	MOVQ dz_base+0(FP), DI
	MOVQ dz_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	MOVQ dy_base+48(FP), DX
	MOVL $0x3f800000, AX // 1.0
	MOVL AX, X15
	VBROADCASTSS X15, Y15
	MOVL $0x7f800000, AX // +Inf
	MOVL AX, X13
	VPBROADCASTD X13, Y13
	VPXOR Y14, Y14, Y14

gloop:
	CMPQ CX, $8
	JL   gdone
	VMOVDQU (SI), Y0
	VPCMPGTD Y13, Y0, Y1 // bits > +Inf: NaN
	VPCMPGTD Y0, Y14, Y2 // 0 > bits: sign bit set
	VPOR Y2, Y1, Y1
	VANDNPS Y15, Y1, Y1  // 1.0 where neither
	VMULPS (DX), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  gloop

gdone:
	VZEROUPPER
	RET
