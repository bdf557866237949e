// mlp.cu - the CUDA kernels of the native GPU engine (gpu/native*_cuda.go).
//
// The pieces mirror the CPU's fused Gorgonia ops (model/fused_*.go) and
// optimizers (model/adam.go, model/sgd.go), under the same names in
// snake_case: dense_bias_relu and dense_bias finish the dense layer that
// cuBLAS starts (model's denseOp does both in one op), relu_grad_bias is
// reluGradOp with the biasGradOp that follows it, bias_grad is biasGradOp
// (of the last layer, which has no ReLU), cross_entropy is LogSoftMax with
// crossEntropyOp and crossEntropyGradOp in one kernel, adam and sgd_momentum
// are the optimizers' updates.
//
// scripts/gen-kernels.sh (make gen-kernels, or go generate ./gpu/) compiles
// this file to gpu/kernels/mlp.ptx, which gpu/kernels_ptx_cuda.go embeds;
// edit here, then rerun it.
//
// Conventions, shared with the Go side (gpu/native_kernels_cuda.go):
//   - Matrices are row-major float32, rows x cols, leading dimension cols.
//   - Every kernel is extern "C" so that its PTX name is its C name.
//   - Scalar parameters are int or float (4 bytes) or double (8); the Go
//     side passes each argument from an 8-byte slot, of which the driver
//     reads as many bytes as the parameter has.
//   - The _at kernels are for the captured step (gpu/captured_cuda.go): they
//     read the batch's place and the update count from device memory, so the
//     same graph serves every step.
//   - Elementwise kernels use a grid-stride loop, so any grid size is correct.
//   - Nothing uses atomics and every float reduction runs in a fixed order
//     in one thread, so results are bit-for-bit reproducible from run to run.
//   - The file is compiled without fast math (-fmad=false -ftz=false
//     -prec-div=true -prec-sqrt=true) so that each operation is IEEE float32
//     and results stay close to the float64 CPU reference.

#define CLASSES 10
#define IMAGE_SIZE 784

// gather_images builds the input batch on the device: row r of x is image
// idx[r] of the uploaded set, each pixel scaled to [0, 1] as pixel/255, the
// same correctly rounded float32 division as data.FillBatch.
__device__ void gather_rows(const unsigned char *images, const int *idx, float *x, int rows)
{
	int n = rows * IMAGE_SIZE;
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		int r = i / IMAGE_SIZE;
		int k = i - r * IMAGE_SIZE;
		size_t src = (size_t)idx[r] * IMAGE_SIZE + (size_t)k;
		x[i] = (float)images[src] / 255.0f;
	}
}

extern "C" __global__ void gather_images(const unsigned char *images, const int *idx, float *x, int rows)
{
	gather_rows(images, idx, x, rows);
}

// gather_images_at is gather_images for the batch that starts at
// order[cursor[0]]: the captured step reads its place from the device.
extern "C" __global__ void gather_images_at(const unsigned char *images, const int *order, const int *cursor, float *x, int rows)
{
	gather_rows(images, order + cursor[0], x, rows);
}

// dense_bias_relu turns z = x.W (rows x cols) into relu(z + b) in place, b
// being one value per column. Like the reference, a negative sum becomes 0.
extern "C" __global__ void dense_bias_relu(float *z, const float *b, int rows, int cols)
{
	int n = rows * cols;
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		float v = z[i] + b[i % cols];
		if (v < 0.0f) {
			v = 0.0f;
		}
		z[i] = v;
	}
}

// dense_bias adds b (one value per column) to z (rows x cols) in place: the
// last layer, whose logits go to cross_entropy without a ReLU.
extern "C" __global__ void dense_bias(float *z, const float *b, int rows, int cols)
{
	int n = rows * cols;
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		z[i] = z[i] + b[i % cols];
	}
}

// cross_entropy handles one row of logits (rows x 10) per thread:
//   logprobs = logits - logsumexp(logits)    (max subtracted first: stable)
//   dlogits  = (softmax - onehot(label)) / rows, the gradient of the mean loss
//   stats[2r]   = -logprobs[label], the row's cross-entropy
//   stats[2r+1] = 1 if the first largest log-probability is the label, else 0
// The label of row r is labels[idx[r]]; labels were checked to be < 10 when
// the set was uploaded. The hit test runs on the log-probabilities with the
// same rule as model.ScoreLogProbs (strictly greater wins, first index on
// ties), so the GPU counts exactly what scoring the copied-back rows would.
__device__ void cross_entropy_rows(const float *logits, const unsigned char *labels, const int *idx, int rows,
				   float *logprobs, float *dlogits, float *stats)
{
	for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += blockDim.x * gridDim.x) {
		const float *z = logits + r * CLASSES;
		float mx = z[0];
		for (int c = 1; c < CLASSES; c++) {
			mx = fmaxf(mx, z[c]);
		}
		float sum = 0.0f;
		for (int c = 0; c < CLASSES; c++) {
			sum += expf(z[c] - mx);
		}
		float lse = mx + logf(sum);
		int label = (int)labels[idx[r]];
		float inv = 1.0f / (float)rows;
		int best = 0;
		float bestLP = z[0] - lse;
		for (int c = 0; c < CLASSES; c++) {
			float lp = z[c] - lse;
			logprobs[r * CLASSES + c] = lp;
			float d = expf(lp);
			if (c == label) {
				d -= 1.0f;
			}
			dlogits[r * CLASSES + c] = d * inv;
			if (lp > bestLP) {
				bestLP = lp;
				best = c;
			}
		}
		stats[2 * r] = -logprobs[r * CLASSES + label];
		stats[2 * r + 1] = best == label ? 1.0f : 0.0f;
	}
}

extern "C" __global__ void cross_entropy(const float *logits, const unsigned char *labels, const int *idx, int rows,
					float *logprobs, float *dlogits, float *stats)
{
	cross_entropy_rows(logits, labels, idx, rows, logprobs, dlogits, stats);
}

// cross_entropy_at is cross_entropy for the batch at order[cursor[0]].
extern "C" __global__ void cross_entropy_at(const float *logits, const unsigned char *labels, const int *order,
					   const int *cursor, int rows, float *logprobs, float *dlogits, float *stats)
{
	cross_entropy_rows(logits, labels, order + cursor[0], rows, logprobs, dlogits, stats);
}

// bias_grad writes the column sums of d (rows x cols) to out (cols): the
// bias gradient. One thread per column adds the rows in order: no atomics, so the
// result is deterministic.
extern "C" __global__ void bias_grad(const float *d, float *out, int rows, int cols)
{
	for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x) {
		float s = 0.0f;
		for (int r = 0; r < rows; r++) {
			s += d[r * cols + j];
		}
		out[j] = s;
	}
}

// relu_grad_bias writes to out (rows x cols) the gradient d with the
// entries zeroed where the layer's output a was not positive (a = relu(z),
// so a > 0 exactly where z > 0), and to bias (cols) the column sums of out:
// the layer's bias gradient, added over the rows in order as bias_grad
// does, so one launch does what relu_grad and bias_grad did in two. One
// thread per column; out may be d itself (the native engine works in place).
extern "C" __global__ void relu_grad_bias(const float *d, const float *a, float *out, float *bias, int rows, int cols)
{
	for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x) {
		float s = 0.0f;
		for (int r = 0; r < rows; r++) {
			int i = r * cols + j;
			float v = a[i] > 0.0f ? d[i] : 0.0f;
			out[i] = v;
			s += v;
		}
		bias[j] = s;
	}
}

// accumulate_scores adds the per-row results of cross_entropy (stats, rows
// x 2) to the running totals of the Gorgonia engine's training loop:
// totals[0] += each row's cross-entropy, totals[1] += each row's hit, in
// row order, in double, by one thread, so the sums are the same bits
// however often the host reads them. mean[0] gets the batch's mean loss,
// the value of the graph's loss node. Launch it as one thread.
extern "C" __global__ void accumulate_scores(const float *stats, int rows, double *totals, float *mean)
{
	if (blockIdx.x != 0 || threadIdx.x != 0) {
		return;
	}
	double loss = totals[0], hits = totals[1], batch = 0.0;
	for (int r = 0; r < rows; r++) {
		loss += (double)stats[2 * r];
		hits += (double)stats[2 * r + 1];
		batch += (double)stats[2 * r];
	}
	totals[0] = loss;
	totals[1] = hits;
	mean[0] = (float)(batch / (double)rows);
}

// adam applies one step of Keras's Adam to n parameters:
//   m <- beta1*m + (1-beta1)*g
//   v <- beta2*v + (1-beta2)*g*g
//   w <- w - alpha*m/(sqrt(v)+eps),  alpha = lr*sqrt(1-beta2^t)/(1-beta1^t)
// alpha and the (1-beta) factors are computed on the host in float64.
__device__ void adam_update(float *w, const float *g, float *m, float *v, int n,
			    float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float alpha, float eps)
{
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		float gi = g[i];
		float mi = beta1 * m[i] + oneMinusBeta1 * gi;
		float vi = beta2 * v[i] + oneMinusBeta2 * (gi * gi);
		m[i] = mi;
		v[i] = vi;
		w[i] = w[i] - alpha * mi / (sqrtf(vi) + eps);
	}
}

extern "C" __global__ void adam(float *w, const float *g, float *m, float *v, int n,
				float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float alpha, float eps)
{
	adam_update(w, g, m, v, n, beta1, oneMinusBeta1, beta2, oneMinusBeta2, alpha, eps);
}

// adam_at is adam with the step size computed on the device from the
// number of updates done so far (steps[0]), as model.AdamRate does on the
// host (in double, then rounded to float), so that a captured step needs no
// argument that changes from one step to the next.
extern "C" __global__ void adam_at(float *w, const float *g, float *m, float *v, int n,
				   double beta1, double beta2, double lr, float eps, const long long *steps)
{
	double t = (double)(steps[0] + 1);
	float alpha = (float)(lr * sqrt(1.0 - pow(beta2, t)) / (1.0 - pow(beta1, t)));
	adam_update(w, g, m, v, n, (float)beta1, (float)(1.0 - beta1), (float)beta2, (float)(1.0 - beta2), alpha, eps);
}

// sgd_momentum applies one step of Keras's SGD with momentum to n
// parameters, rounding each product as model/kernels.SGDMomentum does:
//   v <- mu*v - lr*g
//   w <- w + v
extern "C" __global__ void sgd_momentum(float *w, const float *g, float *v, int n, float mu, float lr)
{
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		float vi = mu * v[i] - lr * g[i];
		v[i] = vi;
		w[i] = w[i] + vi;
	}
}

// advance_step moves the captured step on: the next batch starts batch
// images further on, and one more update is done. Launch it as one thread,
// last.
extern "C" __global__ void advance_step(int *cursor, int batch, long long *steps)
{
	if (blockIdx.x == 0 && threadIdx.x == 0) {
		cursor[0] += batch;
		steps[0] += 1;
	}
}

#define COUNT_THREADS 256

// count_nonfinite writes to out[0] how many of the n values of x are NaN or
// infinite, so that the host learns whether the parameters are finite from
// one int instead of copying them all. Launch it as one block of
// COUNT_THREADS threads: each thread counts a stride, then the block adds
// the counts in shared memory. Integer sums do not depend on order.
extern "C" __global__ void count_nonfinite(const float *x, int n, int *out)
{
	__shared__ int counts[COUNT_THREADS];
	int c = 0;
	for (int i = threadIdx.x; i < n; i += blockDim.x) {
		if (!isfinite(x[i])) {
			c++;
		}
	}
	counts[threadIdx.x] = c;
	__syncthreads();
	for (int half = blockDim.x / 2; half > 0; half /= 2) {
		if (threadIdx.x < half) {
			counts[threadIdx.x] += counts[threadIdx.x + half];
		}
		__syncthreads();
	}
	if (threadIdx.x == 0) {
		out[0] = counts[0];
	}
}
