// Package kernels holds the CPU inner loops that dominate a training step:
// the single-precision matrix product behind every dense layer and the Adam
// update. Both give bit-for-bit the results of the plain code they replace
// (gonum's Sgemm and the scalar Adam loop): they keep each element's order of
// operations and use separate multiplies and adds, never fused ones. They are
// faster because they use 8-wide AVX vectors where gonum uses 4-wide SSE,
// and because they split the work across the machine's cores.
package kernels
