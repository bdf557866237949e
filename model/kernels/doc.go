// Package kernels holds the CPU inner loops that dominate a training step:
// the single-precision matrix product behind every dense layer, the
// layers' bias and ReLU and the ReLU gradient, and the Adam update. Each
// is tested bit for bit against the plain loop it replaces: gonum's Sgemm
// for A·B and Aᵀ·B, a sequential loop for A·Bᵀ (which gonum sums in a
// different order), the element loops, and the scalar Adam update. They keep each
// element's order of operations and never fuse a multiply with an add.
//
// Where the speed comes from:
//   - the products skip the zero elements of A, as gonum does, but find them
//     eight at a time without branches (MNIST images are about 80% zeros,
//     ReLU zeroes about half of each hidden layer), and keep each row of C in
//     AVX registers while they add up the rows of B its nonzeros pick;
//   - a transposed operand (Aᵀ in the weight gradients, Bᵀ in the gradient
//     passed down) is transposed eight by eight into scratch memory the
//     crew keeps, so that every product reads contiguous rows;
//   - Adam runs eight float32 lanes at a time, with subnormals flushed, and
//     the bias, ReLU and ReLU gradient eight at a time;
//   - where the core has AVX-512, the row kernel and Adam take sixteen
//     lanes at a time (same bits): a hidden layer of 128 fits in eight
//     registers, and Adam, bound by its square roots and divisions, runs
//     1.6× as fast;
//   - large products and Adam are shared with helper goroutines that stay
//     awake between the steps of training (see Crew); each backend owns one.
//
// On machines without AVX2 the same code runs through gonum's loops.
package kernels
