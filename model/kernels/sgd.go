package kernels

// SGDMomentum applies one step of Keras's SGD with momentum μ and learning
// rate lr to w from its gradient g, with the velocity v in w's precision:
//
//	v ← μ·v - lr·g
//	w ← w + v
//
// Each product is rounded to T before the sum, so that no compiler fuses
// them into an FMA that the CUDA kernel (gpu/kernels/mlp.cu, sgd_momentum)
// does not use either. All three slices must have the same length.
func SGDMomentum[T float32 | float64](w, g, v []T, mu, lr T) {
	g = g[:len(w)]
	v = v[:len(w)]
	for i := range w {
		a := T(mu * v[i])
		b := T(lr * g[i])
		v[i] = a - b
		w[i] += v[i]
	}
}
