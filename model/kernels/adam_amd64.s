#include "textflag.h"

// func adamF32AVX(w, g, m, v []float32, k *adamConsts32)
// Eight elements at a time, in float32 exactly as AdamScalar:
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + ((1-beta2)*g)*g
//	w = w - (alpha*m) / (sqrt(v)+eps)
// Square root and division are correctly rounded in both and no multiply
// is fused with an add, so the results are bit-identical. len(w) must be a
// multiple of 8; the caller does the tail.
//
// The kernel runs with subnormals flushed to zero (MXCSR FTZ and DAZ, as
// TensorFlow runs Keras on the CPU): the first moment of a weight whose
// pixel is rarely lit decays by 0.9 a step into the subnormal range, and
// every instruction touching a subnormal costs a microcode assist, which
// made the whole update take twice as long. The caller's MXCSR is restored.
TEXT ·adamF32AVX(SB), NOSPLIT, $8-104
	STMXCSR saved-8(SP)
	MOVL    saved-8(SP), AX
	ORL     $0x8040, AX      // FTZ (bit 15) and DAZ (bit 6)
	MOVL    AX, flushed-4(SP)
	LDMXCSR flushed-4(SP)
	MOVQ w_base+0(FP), DI
	MOVQ w_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	MOVQ k+96(FP), AX
	VBROADCASTSS 0(AX), Y10  // alpha
	VBROADCASTSS 4(AX), Y11  // beta1
	VBROADCASTSS 8(AX), Y12  // 1-beta1
	VBROADCASTSS 12(AX), Y13 // beta2
	VBROADCASTSS 16(AX), Y14 // 1-beta2
	VBROADCASTSS 20(AX), Y15 // eps

loop8:
	CMPQ CX, $8
	JL   done
	VMOVUPS (SI), Y0         // g
	VMULPS (R8), Y11, Y1     // beta1*m
	VMULPS Y0, Y12, Y2       // (1-beta1)*g
	VADDPS Y2, Y1, Y1        // m
	VMOVUPS Y1, (R8)
	VMULPS (R9), Y13, Y3     // beta2*v
	VMULPS Y0, Y14, Y4       // (1-beta2)*g
	VMULPS Y0, Y4, Y4        // ((1-beta2)*g)*g
	VADDPS Y4, Y3, Y3        // v
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y5
	VADDPS Y15, Y5, Y5       // sqrt(v)+eps
	VMULPS Y1, Y10, Y6       // alpha*m
	VDIVPS Y5, Y6, Y6        // alpha*m / (sqrt(v)+eps)
	VMOVUPS (DI), Y7
	VSUBPS Y6, Y7, Y7        // w - step
	VMOVUPS Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  loop8

done:
	LDMXCSR saved-8(SP)
	VZEROUPPER
	RET
