#include "textflag.h"

// func scalePixelsAVX(dst []float32, src []byte)
// dst[j] = float32(src[j]) / 255 for every j < len(src), eight at a time;
// len(src) must be a multiple of 8 and len(dst) at least len(src). The
// conversion of a byte is exact and VDIVPS rounds correctly, as Go's
// float32 division does, so the values are bit-identical to the Go loop's.
TEXT ·scalePixelsAVX(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	MOVL $0x437f0000, AX // 255.0
	MOVL AX, X15
	VBROADCASTSS X15, Y15

loop16:
	CMPQ CX, $16
	JL   tail8
	VPMOVZXBD (SI), Y0
	VPMOVZXBD 8(SI), Y1
	VCVTDQ2PS Y0, Y0
	VCVTDQ2PS Y1, Y1
	VDIVPS    Y15, Y0, Y0
	VDIVPS    Y15, Y1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ $16, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  loop16

tail8:
	CMPQ CX, $8
	JL   done
	VPMOVZXBD (SI), Y0
	VCVTDQ2PS Y0, Y0
	VDIVPS    Y15, Y0, Y0
	VMOVUPS   Y0, (DI)

done:
	VZEROUPPER
	RET

// func prefetchBytes(p []byte)
// Asks for every cache line of p ahead of its use: a shuffled batch reads
// its images from all over the 47 MB training set, and the conversion of
// one image is short enough that waiting on memory for the next one
// dominated it.
TEXT ·prefetchBytes(SB), NOSPLIT, $0-24
	MOVQ p_base+0(FP), SI
	MOVQ p_len+8(FP), CX
	TESTQ CX, CX
	JZ   pdone
	LEAQ -1(SI)(CX*1), DX // the last byte: its line may lie past a 64-byte step
	PREFETCHT0 (DX)

ploop:
	PREFETCHT0 (SI)
	ADDQ $64, SI
	CMPQ SI, DX
	JLE  ploop

pdone:
	RET
