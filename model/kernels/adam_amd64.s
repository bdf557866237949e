#include "textflag.h"

// func adamF32AVX(w, g []float32, m, v []float64, k *AdamConsts)
// Four elements at a time, in float64 exactly as the scalar loop in adam.go:
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + ((1-beta2)*g)*g
//	w = w - float32(alpha*m / (sqrt(v)+eps))
// Square root and division are correctly rounded in both, so the results
// are bit-identical. The tail of len(w)%4 elements is left to the caller.
TEXT ·adamF32AVX(SB), NOSPLIT, $0-104
	MOVQ w_base+0(FP), DI
	MOVQ w_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	MOVQ k+96(FP), AX
	VBROADCASTSD 0(AX), Y10  // alpha
	VBROADCASTSD 8(AX), Y11  // beta1
	VBROADCASTSD 16(AX), Y12 // 1-beta1
	VBROADCASTSD 24(AX), Y13 // beta2
	VBROADCASTSD 32(AX), Y14 // 1-beta2
	VBROADCASTSD 40(AX), Y15 // eps

loop4:
	CMPQ CX, $4
	JL   done
	VCVTPS2PD (SI), Y0       // g
	VMULPD (R8), Y11, Y1     // beta1*m
	VMULPD Y0, Y12, Y2       // (1-beta1)*g
	VADDPD Y2, Y1, Y1        // m
	VMOVUPD Y1, (R8)
	VMULPD (R9), Y13, Y3     // beta2*v
	VMULPD Y0, Y14, Y4       // (1-beta2)*g
	VMULPD Y0, Y4, Y4        // ((1-beta2)*g)*g
	VADDPD Y4, Y3, Y3        // v
	VMOVUPD Y3, (R9)
	VSQRTPD Y3, Y5
	VADDPD Y15, Y5, Y5       // sqrt(v)+eps
	VMULPD Y1, Y10, Y6       // alpha*m
	VDIVPD Y5, Y6, Y6        // alpha*m / (sqrt(v)+eps)
	VCVTPD2PSY Y6, X7        // to float32, rounded to nearest
	VMOVUPS (DI), X8
	VSUBPS X7, X8, X8        // w - step
	VMOVUPS X8, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $32, R8
	ADDQ $32, R9
	SUBQ $4, CX
	JMP  loop4

done:
	VZEROUPPER
	RET
