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

// func adamF32AVX512(w, g, m, v []float32, k *adamConsts32)
// adamF32AVX sixteen elements at a time, the same operations in the same
// order; len(w) must be a multiple of 16. Square root and division, which
// bound this loop, go twice as fast on the wide registers where the core has
// them at full width.
TEXT ·adamF32AVX512(SB), NOSPLIT, $8-104
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
	VBROADCASTSS 0(AX), Z10  // alpha
	VBROADCASTSS 4(AX), Z11  // beta1
	VBROADCASTSS 8(AX), Z12  // 1-beta1
	VBROADCASTSS 12(AX), Z13 // beta2
	VBROADCASTSS 16(AX), Z14 // 1-beta2
	VBROADCASTSS 20(AX), Z15 // eps

loop16:
	CMPQ CX, $16
	JL   done16
	VMOVUPS (SI), Z0         // g
	VMULPS (R8), Z11, Z1     // beta1*m
	VMULPS Z0, Z12, Z2       // (1-beta1)*g
	VADDPS Z2, Z1, Z1        // m
	VMOVUPS Z1, (R8)
	VMULPS (R9), Z13, Z3     // beta2*v
	VMULPS Z0, Z14, Z4       // (1-beta2)*g
	VMULPS Z0, Z4, Z4        // ((1-beta2)*g)*g
	VADDPS Z4, Z3, Z3        // v
	VMOVUPS Z3, (R9)
	VSQRTPS Z3, Z5
	VADDPS Z15, Z5, Z5       // sqrt(v)+eps
	VMULPS Z1, Z10, Z6       // alpha*m
	VDIVPS Z5, Z6, Z6        // alpha*m / (sqrt(v)+eps)
	VMOVUPS (DI), Z7
	VSUBPS Z6, Z7, Z7        // w - step
	VMOVUPS Z7, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R8
	ADDQ $64, R9
	SUBQ $16, CX
	JMP  loop16

done16:
	LDMXCSR saved-8(SP)
	VZEROUPPER
	RET
