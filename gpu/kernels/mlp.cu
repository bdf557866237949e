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
//   - dense_rows, layer_grads, dense_rows_at and fused_update are the
//     Gorgonia and fused engines' (gpu/graph_ops_cuda.go, gpu/fused_cuda.go):
//     a step's work between the first layer's two products in two launches.
//   - The atomics are integers: they count finished blocks (dense_rows_block)
//     and blocks at a barrier (grid_sync).
//   - What one block reads that other blocks of the same launch wrote (the
//     persistent kernel's every phase, the totals' last block) is loaded
//     with __ldcg, from L2, never from a line this SM's L1 kept from before
//     (load<true>); helpers that serve both kinds of kernel take the choice
//     as a template argument, so that the others keep L1.
//   - Elementwise kernels use a grid-stride loop, so any grid size is correct.
//   - No float atomics: every float reduction runs in a fixed order in one
//     thread, so results are bit-for-bit reproducible from run to run.
//   - The file is compiled without fast math (-fmad=false -ftz=false
//     -prec-div=true -prec-sqrt=true) so that each operation is IEEE float32
//     and results stay close to the float64 CPU reference.

#define CLASSES 10
#define IMAGE_SIZE 784
// The hidden layers' widths, model.Hidden1 and model.Hidden2 (checked by
// gpu/kernels_gen_test.go): dense_rows_at keeps a row's units in shared
// memory.
#define HIDDEN1 128
#define HIDDEN2 64

// load reads *p; Fresh: from L2 (__ldcg), for what another block of the
// same launch wrote.
template <bool Fresh>
__device__ float load(const float *p)
{
	return Fresh ? __ldcg(p) : *p;
}

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
__device__ void cross_entropy_row(const float *z, int label, float inv, float *logprobs, float *dlogits, float *stats)
{
	float mx = z[0];
	for (int c = 1; c < CLASSES; c++) {
		mx = fmaxf(mx, z[c]);
	}
	float sum = 0.0f;
	for (int c = 0; c < CLASSES; c++) {
		sum += expf(z[c] - mx);
	}
	float lse = mx + logf(sum);
	int best = 0;
	float bestLP = z[0] - lse;
	for (int c = 0; c < CLASSES; c++) {
		float lp = z[c] - lse;
		logprobs[c] = lp;
		float d = expf(lp);
		if (c == label) {
			d -= 1.0f;
		}
		dlogits[c] = d * inv;
		if (lp > bestLP) {
			bestLP = lp;
			best = c;
		}
	}
	stats[0] = -logprobs[label];
	stats[1] = best == label ? 1.0f : 0.0f;
}

__device__ void cross_entropy_rows(const float *logits, const unsigned char *labels, const int *idx, int rows,
				   float *logprobs, float *dlogits, float *stats)
{
	for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += blockDim.x * gridDim.x) {
		cross_entropy_row(logits + r * CLASSES, (int)labels[idx[r]], 1.0f / (float)rows,
				  logprobs + r * CLASSES, dlogits + r * CLASSES, stats + 2 * r);
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

// block_accumulate adds the per-row results of cross_entropy (stats, rows
// x 2) to the running totals of the training loop: totals[0] += each row's
// cross-entropy, totals[1] += each row's hit, in row order, in double, by
// one thread, so the sums are the same bits however often the host reads
// them; mean[0] gets the batch's mean loss, the value of the Gorgonia
// graph's loss node. The whole block runs it: its threads stage the rows'
// results in shared memory, a chunk at a time, one load each at once, and
// thread 0 adds them. The rows may have been written by other blocks of the
// same launch: loaded with __ldcg.
__device__ void block_accumulate(const float *stats, int rows, double *totals, float *mean)
{
	__shared__ float chunk[2 * HIDDEN1];
	double loss = 0.0, hits = 0.0, batch = 0.0;
	if (threadIdx.x == 0) {
		loss = totals[0];
		hits = totals[1];
	}
	for (int base = 0; base < rows; base += HIDDEN1) {
		int n = rows - base < HIDDEN1 ? rows - base : HIDDEN1;
		for (int i = threadIdx.x; i < 2 * n; i += blockDim.x) {
			chunk[i] = __ldcg(&stats[2 * base + i]);
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			for (int r = 0; r < n; r++) {
				loss += (double)chunk[2 * r];
				hits += (double)chunk[2 * r + 1];
				batch += (double)chunk[2 * r];
			}
		}
		__syncthreads();
	}
	if (threadIdx.x == 0) {
		totals[0] = loss;
		totals[1] = hits;
		mean[0] = (float)(batch / (double)rows);
	}
}

// accumulate_scores is block_accumulate in a launch of its own: launch it as
// one block.
extern "C" __global__ void accumulate_scores(const float *stats, int rows, double *totals, float *mean)
{
	if (blockIdx.x == 0) {
		block_accumulate(stats, rows, totals, mean);
	}
}

// adam applies one step of Keras's Adam to n parameters:
//   m <- beta1*m + (1-beta1)*g
//   v <- beta2*v + (1-beta2)*g*g
//   w <- w - alpha*m/(sqrt(v)+eps),  alpha = lr*sqrt(1-beta2^t)/(1-beta1^t)
// alpha and the (1-beta) factors are computed on the host in float64.
__device__ void adam_element(float *w, float g, float *m, float *v, float beta1, float oneMinusBeta1, float beta2,
			     float oneMinusBeta2, float alpha, float eps)
{
	float mi = beta1 * *m + oneMinusBeta1 * g;
	float vi = beta2 * *v + oneMinusBeta2 * (g * g);
	*m = mi;
	*v = vi;
	*w = *w - alpha * mi / (sqrtf(vi) + eps);
}

extern "C" __global__ void adam(float *w, const float *g, float *m, float *v, int n,
				float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float alpha, float eps)
{
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		adam_element(w + i, g[i], m + i, v + i, beta1, oneMinusBeta1, beta2, oneMinusBeta2, alpha, eps);
	}
}

// adam_rate is Adam's step size for update t (1-based), as model.AdamRate
// computes it on the host: in double, then rounded to float.
__device__ float adam_rate(double beta1, double beta2, double lr, double t)
{
	return (float)(lr * sqrt(1.0 - pow(beta2, t)) / (1.0 - pow(beta1, t)));
}

// adam_rates fills rates[i] with adam_rate of update i + 1, for i < n: the
// table adam_rate_at reads, made once per engine.
extern "C" __global__ void adam_rates(float *rates, int n, double beta1, double beta2, double lr)
{
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		rates[i] = adam_rate(beta1, beta2, lr, (double)(i + 1));
	}
}

// adam_rate_at is adam_rate of update t, looked up in the table adam_rates
// made (nrates entries) where t is in it, else worked out. Every thread
// of a launch has the same t, so the branch never diverges; a kernel with
// one thread a parameter would otherwise take the two pow in double (about
// 170 double instructions) in each of its 100,000-odd threads, every step.
__device__ float adam_rate_at(const float *rates, int nrates, double beta1, double beta2, double lr, long long t)
{
	if (t >= 1 && t <= nrates) {
		return rates[t - 1];
	}
	return adam_rate(beta1, beta2, lr, (double)t);
}

// adam_at is adam with the step size found on the device from the number
// of updates done so far (steps[0]), so that a captured step needs no
// argument that changes from one step to the next. counted is 1 where
// steps[0] already counts this update (the Gorgonia engine's captured step,
// whose dense_rows_at moved it on), else 0. rates and nrates are
// adam_rate_at's table.
extern "C" __global__ void adam_at(float *w, const float *g, float *m, float *v, int n,
				   double beta1, double beta2, double lr, float eps, const long long *steps,
				   int counted, const float *rates, int nrates)
{
	float alpha = adam_rate_at(rates, nrates, beta1, beta2, lr, steps[0] + (counted ? 0 : 1));
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		adam_element(w + i, g[i], m + i, v + i, (float)beta1, (float)(1.0 - beta1), (float)beta2,
			     (float)(1.0 - beta2), alpha, eps);
	}
}

// sgd_momentum applies one step of Keras's SGD with momentum to n
// parameters, rounding each product as model/kernels.SGDMomentum does:
//   v <- mu*v - lr*g
//   w <- w + v
__device__ void sgd_element(float *w, float g, float *v, float mu, float lr)
{
	float vi = mu * *v - lr * g;
	*v = vi;
	*w = *w + vi;
}

extern "C" __global__ void sgd_momentum(float *w, const float *g, float *v, int n, float mu, float lr)
{
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
		sgd_element(w + i, g[i], v + i, mu, lr);
	}
}

// finish_step ends a captured step: accumulate_scores, then the step moves
// on (the next batch starts batch images further on, and one more update is
// done). Launch it as one block, last.
extern "C" __global__ void finish_step(const float *stats, int rows, double *totals, float *mean,
				       int *cursor, int batch, long long *steps)
{
	if (blockIdx.x == 0) {
		block_accumulate(stats, rows, totals, mean);
		if (threadIdx.x == 0) {
			cursor[0] += batch;
			steps[0] += 1;
		}
	}
}

// rowGroup is the threads of a block that work on one row of the batch
// (dense_row_rest): the whole block, or a part of it when a block takes
// several rows at once. tx is a thread's place in the group, width the
// group's size; active is false in a group that has no row this round
// (it still reaches every barrier). a1 (HIDDEN1), a2, d2 (HIDDEN2) and z3
// (CLASSES) are the group's rows of units in shared memory; w2s is the
// block's copy of W2 there (stage_w2).
struct rowGroup {
	int tx, width;
	bool active;
	float *a1, *a2, *d2, *z3;
	const float *w2s;
};

// stage_w2 copies W2 (HIDDEN1 x HIDDEN2) into the block's shared memory as
// its transpose, w2s[j * W2S_STRIDE + i] = W2[i][j], every thread a share:
// the reads from global memory are coalesced, and both of dense_row_rest's
// walks over W2 (along i for a unit j of h2, along j for a unit i of dh1)
// then read consecutive words across a warp. (Walking a row of W2 in
// global memory for dh1 would have a warp touch 32 lines an instruction.)
// The stride is HIDDEN1 + 1 so that the stores, a column at a time, fall in
// different banks. The caller synchronises before the copy is read.
#define W2S_STRIDE (HIDDEN1 + 1)
#define W2S_FLOATS (HIDDEN2 * W2S_STRIDE)
template <bool Fresh>
__device__ void stage_w2(const float *w2, float *w2s)
{
	// Unrolled: many loads in flight, not one round trip to L2 after
	// another.
#pragma unroll 16
	for (int e = threadIdx.x; e < HIDDEN1 * HIDDEN2; e += blockDim.x) {
		w2s[e % HIDDEN2 * W2S_STRIDE + e / HIDDEN2] = load<Fresh>(&w2[e]);
	}
}

// dense_row_rest is the rest of the network for row r of the batch, run by
// a group of the block's threads, given the row's first layer's output
// (g.a1, ReLU applied) and W2 (g.w2s, staged):
//   h2 = relu(a1.W2 + b2)
//   cross_entropy_row of h2.W3 + b3    logprobs, dlogits, stats
// and in training the gradients at the units, for the weight gradients
// that follow:
//   dh2 = dlogits.W3' where h2 > 0, else 0
//   dh1 = dh2.W2' where a1 > 0, else 0
// Each sum runs over its terms in order in one thread, and the bias comes
// after the products, as the separate kernels have it. Every thread of the
// block must call it (it has the block's barriers); it ends with one, so
// that the caller may refill a1 for the next row.
template <bool Fresh>
__device__ void dense_row_rest(int r, rowGroup g, const float *b2, const float *w3, const float *b3, int label,
			       int rows, int train, float *h2, float *logprobs, float *dlogits, float *stats, float *dh2,
			       float *dh1)
{
	__syncthreads();
	for (int j = g.tx; g.active && j < HIDDEN2; j += g.width) {
		float s = 0.0f;
		for (int i = 0; i < HIDDEN1; i++) {
			s += g.a1[i] * g.w2s[j * W2S_STRIDE + i];
		}
		float v = s + load<Fresh>(&b2[j]);
		if (v < 0.0f) {
			v = 0.0f;
		}
		g.a2[j] = v;
		h2[r * HIDDEN2 + j] = v;
	}
	__syncthreads();
	for (int c = g.tx; g.active && c < CLASSES; c += g.width) {
		float s = 0.0f;
		for (int j = 0; j < HIDDEN2; j++) {
			s += g.a2[j] * load<Fresh>(&w3[j * CLASSES + c]);
		}
		g.z3[c] = s + load<Fresh>(&b3[c]);
	}
	__syncthreads();
	float *dl = dlogits + r * CLASSES;
	if (g.active && g.tx == 0) {
		cross_entropy_row(g.z3, label, 1.0f / (float)rows, logprobs + r * CLASSES, dl, stats + 2 * r);
	}
	__syncthreads();
	if (train) {
		for (int j = g.tx; g.active && j < HIDDEN2; j += g.width) {
			float s = 0.0f;
			if (g.a2[j] > 0.0f) {
				for (int c = 0; c < CLASSES; c++) {
					s += dl[c] * load<Fresh>(&w3[j * CLASSES + c]);
				}
			}
			g.d2[j] = s;
			dh2[r * HIDDEN2 + j] = s;
		}
		__syncthreads();
		for (int i = g.tx; g.active && i < HIDDEN1; i += g.width) {
			float s = 0.0f;
			if (g.a1[i] > 0.0f) {
				for (int j = 0; j < HIDDEN2; j++) {
					s += g.d2[j] * g.w2s[j * W2S_STRIDE + i];
				}
			}
			dh1[r * HIDDEN1 + i] = s;
		}
	}
	__syncthreads();
}

// dense_rows_block is dense_rows for the block it runs in: each of its rows
// of the batch (row r's image is idx[r]), one block a row, the units of a
// row in shared memory: h1 = relu(z1 + b1) (z1 = x.W1, from cuBLAS; h1 may
// be z1), then dense_row_rest. In training the last block to finish then
// adds all rows' results to the running totals and writes the batch's mean
// loss (block_accumulate); it returns true in that block. done is an int, 0
// between launches, that counts the finished blocks (an integer atomic: the
// float sums keep a fixed order).
__device__ bool dense_rows_block(const float *z1, float *h1, const float *b1, const float *w2, const float *b2,
				 const float *w3, const float *b3, const unsigned char *labels, const int *idx,
				 int rows, int train, float *h2, float *logprobs, float *dlogits, float *stats,
				 float *dh2, float *dh1, double *totals, float *mean, int *done)
{
	__shared__ float a1[HIDDEN1], a2[HIDDEN2], d2[HIDDEN2], z3[CLASSES];
	__shared__ float w2s[W2S_FLOATS];
	__shared__ int last;
	rowGroup g = {(int)threadIdx.x, (int)blockDim.x, true, a1, a2, d2, z3, w2s};
	if (blockIdx.x < rows) {
		stage_w2<false>(w2, w2s); // read after dense_row_rest's first barrier
	}
	for (int r = blockIdx.x; r < rows; r += gridDim.x) {
		for (int i = threadIdx.x; i < HIDDEN1; i += blockDim.x) {
			float v = z1[r * HIDDEN1 + i] + b1[i];
			if (v < 0.0f) {
				v = 0.0f;
			}
			a1[i] = v;
			h1[r * HIDDEN1 + i] = v;
		}
		dense_row_rest<false>(r, g, b2, w3, b3, (int)labels[idx[r]], rows, train, h2, logprobs, dlogits, stats, dh2,
			       dh1);
	}
	if (!train) {
		return false;
	}
	// Make this block's rows visible to the block that adds them, then
	// count it finished; the last one adds.
	__threadfence();
	__syncthreads();
	if (threadIdx.x == 0) {
		last = atomicAdd(done, 1) == (int)(gridDim.x - 1);
	}
	__syncthreads();
	if (!last) {
		return false;
	}
	__threadfence();
	block_accumulate(stats, rows, totals, mean);
	if (threadIdx.x == 0) {
		done[0] = 0;
	}
	return true;
}

// dense_rows is dense_rows_block over the grid, for the Gorgonia engine's
// rows op (gpu/graph_ops_cuda.go): launch it as rows blocks of HIDDEN1
// threads (any other shape is correct too). train 0 runs the forward part
// alone (evaluation, prediction) and leaves the totals.
extern "C" __global__ void dense_rows(const float *z1, float *h1, const float *b1, const float *w2, const float *b2,
				      const float *w3, const float *b3, const unsigned char *labels, const int *idx,
				      int rows, int train, float *h2, float *logprobs, float *dlogits, float *stats,
				      float *dh2, float *dh1, double *totals, float *mean, int *done)
{
	dense_rows_block(z1, h1, b1, w2, b2, w3, b3, labels, idx, rows, train, h2, logprobs, dlogits, stats, dh2, dh1,
			 totals, mean, done);
}

// dense_rows_at is dense_rows in training for the batch at order[cursor[0]],
// for the fused engine's captured step (gpu/fused_cuda.go). Its last block
// also moves the step on, as finish_step does: every block has read the
// cursor by then, and fused_update, launched after it, reads the new update
// count.
extern "C" __global__ void dense_rows_at(const float *z1, float *h1, const float *b1, const float *w2,
					 const float *b2, const float *w3, const float *b3,
					 const unsigned char *labels, const int *order, int *cursor, int rows,
					 float *h2, float *logprobs, float *dlogits, float *stats, float *dh2,
					 float *dh1, double *totals, float *mean, int *done, long long *steps)
{
	if (dense_rows_block(z1, h1, b1, w2, b2, w3, b3, labels, order + cursor[0], rows, 1, h2, logprobs, dlogits,
			     stats, dh2, dh1, totals, mean, done) &&
	    threadIdx.x == 0) {
		cursor[0] += rows;
		steps[0] += 1;
	}
}

// column_product is the (i, j) entry of a'.d summed over the rows in order:
// a weight gradient (a the layer's input, d the gradient at its output), or
// with a == 0 the column sum of d, a bias gradient.
template <bool Fresh>
__device__ float column_product(const float *a, int acols, int i, const float *d, int dcols, int j, int rows)
{
	float s = 0.0f;
#pragma unroll 8
	for (int r = 0; r < rows; r++) {
		float v = load<Fresh>(&d[r * dcols + j]);
		s += a ? load<Fresh>(&a[r * acols + i]) * v : v;
	}
	return s;
}

// fused_gradient is parameter k's gradient in the fused step, k indexing
// the flat buffers, whose tensors start at off[0..5] (model.Layout order;
// off[0] is 0): dW1's entries come from cuBLAS (in g), the others are
// column_products of dense_rows_at's rows. False for the padding between
// tensors, which has no gradient.
template <bool Fresh>
__device__ bool fused_gradient(int k, const int *off, const float *g, const float *h1, const float *h2,
			       const float *dh1, const float *dh2, const float *dlogits, int rows, float *out)
{
	const int sizes[6] = {IMAGE_SIZE * HIDDEN1, HIDDEN1, HIDDEN1 * HIDDEN2, HIDDEN2, HIDDEN2 * CLASSES, CLASSES};
	int t = 5;
	while (t > 0 && k < off[t]) {
		t--;
	}
	int e = k - off[t];
	if (e >= sizes[t]) {
		return false;
	}
	switch (t) {
	case 0:
		*out = g[k];
		break;
	case 1:
		*out = column_product<Fresh>(0, 0, 0, dh1, HIDDEN1, e, rows);
		break;
	case 2:
		*out = column_product<Fresh>(h1, HIDDEN1, e / HIDDEN2, dh2, HIDDEN2, e % HIDDEN2, rows);
		break;
	case 3:
		*out = column_product<Fresh>(0, 0, 0, dh2, HIDDEN2, e, rows);
		break;
	case 4:
		*out = column_product<Fresh>(h2, HIDDEN2, e / CLASSES, dlogits, CLASSES, e % CLASSES, rows);
		break;
	default:
		*out = column_product<Fresh>(0, 0, 0, dlogits, CLASSES, e, rows);
	}
	return true;
}

// layer_grads writes, one thread an entry, the gradients of every
// parameter but W1 (fused_gradient) into the flat gradient buffer g of n
// floats: the Gorgonia engine's rows op's gradients (gpu/graph_ops_cuda.go).
extern "C" __global__ void layer_grads(float *g, int n, int off1, int off2, int off3, int off4, int off5,
				       const float *h1, const float *h2, const float *dh1, const float *dh2,
				       const float *dlogits, int rows)
{
	const int off[6] = {0, off1, off2, off3, off4, off5};
	for (int k = off1 + blockIdx.x * blockDim.x + threadIdx.x; k < n; k += blockDim.x * gridDim.x) {
		float gk;
		if (fused_gradient<false>(k, off, g, h1, h2, dh1, dh2, dlogits, rows, &gk)) {
			g[k] = gk;
		}
	}
}

// The fused engine's optimizers, fused_update's optimizer argument.
#define FUSED_ADAM 0
#define FUSED_SGD 1

// update_element stores parameter k's gradient gk in g and applies an
// update to it: Adam (FUSED_ADAM) with slots s0 = m and s1 = v and step
// size alpha, or SGD with momentum (s0 = velocity).
__device__ void update_element(int k, float gk, float *w, float *g, float *s0, float *s1, int optimizer,
			       double beta1, double beta2, double lr, float alpha, float eps, float mu)
{
	g[k] = gk;
	if (optimizer == FUSED_ADAM) {
		adam_element(w + k, gk, s0 + k, s1 + k, (float)beta1, (float)(1.0 - beta1), (float)beta2,
			     (float)(1.0 - beta2), alpha, eps);
	} else {
		sgd_element(w + k, gk, s0 + k, mu, (float)lr);
	}
}

// fused_update ends the fused engine's step, one thread a parameter of the
// flat buffers (n floats): the parameter's gradient (fused_gradient, also
// stored in g), then its update: Adam, whose step size comes from the
// update count dense_rows_at has already moved on (through adam_rate_at's
// table, rates and nrates), with slots s0 = m and s1 = v, or SGD with
// momentum (s0 = velocity).
extern "C" __global__ void fused_update(float *w, float *g, float *s0, float *s1, int n, int off1, int off2,
					int off3, int off4, int off5, const float *h1, const float *h2,
					const float *dh1, const float *dh2, const float *dlogits, int rows,
					const long long *steps, int optimizer, double beta1, double beta2, double lr,
					float eps, float mu, const float *rates, int nrates)
{
	const int off[6] = {0, off1, off2, off3, off4, off5};
	float alpha = 0.0f;
	if (optimizer == FUSED_ADAM) {
		alpha = adam_rate_at(rates, nrates, beta1, beta2, lr, steps[0]);
	}
	for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += blockDim.x * gridDim.x) {
		float gk;
		if (!fused_gradient<false>(k, off, g, h1, h2, dh1, dh2, dlogits, rows, &gk)) {
			continue;
		}
		update_element(k, gk, w, g, s0, s1, optimizer, beta1, beta2, lr, alpha, eps, mu);
	}
}

// ---- the persistent engine (gpu/persistent_cuda.go) ----------------------------
//
// train_steps runs count whole training steps in one launch: the batches
// order[lo + s*rows ...] for s = 0..count-1, each forward, backward and
// update, with a barrier across the grid between the step's three phases
// instead of a launch:
//
//   A  the first layer's product in parts partial sums over the pixels:
//      part[p][r][j] = sum of x[r][k].W1[k][j] over the pixels k of part p
//   B  one block a row: h1 = relu(sum of the parts + b1), then
//      dense_row_rest (the rest of the network, the loss, the gradients at
//      the units)
//   C  the gradient of every parameter (a'.d over the rows, in order) and
//      its update; the last block also adds the rows' results to the totals
//
// The grid must be resident all at once (a cooperative launch makes sure of
// it): grid_sync waits for every block. Launch it with blocks of
// PERSIST_THREADS. Every sum runs in a fixed order in one thread, so the
// results are the same bits from run to run; they differ from the other
// engines' only in how the two large products' terms are grouped and
// rounded (parts, __fmaf_rn). Shared memory is refilled
// in every phase that reads it: nothing in it is carried across a grid
// barrier but the pixel table, filled once a launch and the same in every
// block.
#define PERSIST_THREADS 256
// Phase A's tiles: ROW_TILE rows of the batch over one part of the pixels,
// one thread a unit, so that each weight read serves ROW_TILE rows; a part
// is at most MAX_PART_LEN pixels (the host picks parts, a divisor of
// IMAGE_SIZE, so that the tiles about fill the grid).
#define ROW_TILE 8
#define MAX_PART_LEN (IMAGE_SIZE / 2)
// Phase C: a thread takes GRAD_TILE rows of W1 (inputs i) for one unit j,
// so that each dh1 read serves GRAD_TILE gradients.
// The two large products (phase A's and W1's gradient) add each product
// with one rounding, __fmaf_rn, an IEEE operation like the others (the
// file is compiled without contraction, so only where asked): half the
// instructions of their inner loops, and a little closer to the float64
// reference.
#define GRAD_TILE 8
// The phases a launch runs (all of them but in BenchmarkPersistentParts,
// which times the barriers alone and then adds a phase at a time).
#define PHASE_FIRST 1
#define PHASE_ROWS 2
#define PHASE_UPDATE 4

// grid_sync is a barrier for every thread of the grid. bar[0] counts the
// blocks arrived, bar[BAR_GEN] the barriers passed (a line of its own, so
// that the blocks polling it do not sit on the line the arrivals add to);
// both start at 0. The block's thread 0 arrives for it; the last block to
// arrive resets the count, then
// lets the others go by moving the generation on. The fences before and
// after make the writes before the barrier visible to the reads after it,
// as cooperative groups' grid sync does. A block that waits more than
// BAR_SPINS polls (seconds; a step's phase takes microseconds) traps, so
// that a barrier some block can never reach ends the launch with an error
// instead of hanging the process. (nullcuda, which runs the grid's blocks
// as fibers, has its own.)
#define BAR_SPINS (1u << 26)
#define BAR_GEN 32
#define BAR_WORDS 64
#ifndef NULLCUDA_RUN_KERNELS
__device__ void grid_sync(unsigned int *bar)
{
	__syncthreads();
	if (threadIdx.x == 0) {
		volatile unsigned int *gen = bar + BAR_GEN;
		unsigned int g = *gen;
		__threadfence();
		if (atomicAdd(bar, 1u) == gridDim.x - 1) {
			atomicExch(bar, 0u);
			__threadfence();
			*gen = g + 1;
		} else {
			for (unsigned int spins = 0; *gen == g; spins++) {
				if (spins == BAR_SPINS) {
					__trap();
				}
			}
		}
		__threadfence();
	}
	__syncthreads();
}
#endif

// pixel_scale fills table (256 floats, shared) with p/255 for every pixel
// value p: gather_rows's correctly rounded quotients, looked up.
__device__ void pixel_scale(float *table)
{
	for (int p = threadIdx.x; p < 256; p += blockDim.x) {
		table[p] = (float)p / 255.0f;
	}
	__syncthreads();
}

// The persistent kernel's shared scratch: phase A's pixel tiles, then
// phase B's copy of W2 (stage_w2).
#define XS_FLOATS (PERSIST_THREADS / HIDDEN1 * ROW_TILE * MAX_PART_LEN)
#define SCRATCH_FLOATS (XS_FLOATS > W2S_FLOATS ? XS_FLOATS : W2S_FLOATS)

// first_layer_parts is phase A for the batch idx. Each half of the block
// (HIDDEN1 threads, a unit each) takes a tile at a time: the block stages
// both halves' pixels, scaled, in shared memory (scratch, XS_FLOATS:
// [half][row][pixel] with rows MAX_PART_LEN apart), then each thread runs
// down its part of its unit's column of W1 once, for the tile's rows.
__device__ void first_layer_parts(const unsigned char *images, const int *idx, int rows, const float *w1,
				  const float *scale, int parts, float *part, float *scratch)
{
	const int halves = PERSIST_THREADS / HIDDEN1;
	float (*xs)[ROW_TILE][MAX_PART_LEN] = (float (*)[ROW_TILE][MAX_PART_LEN])scratch;
	int half = threadIdx.x / HIDDEN1, j = threadIdx.x % HIDDEN1;
	int rowTiles = (rows + ROW_TILE - 1) / ROW_TILE;
	int tiles = parts * rowTiles;
	int len = IMAGE_SIZE / parts;
	for (int base = blockIdx.x * halves; base < tiles; base += gridDim.x * halves) {
		__syncthreads(); // the last round's reads are done
		for (int e = threadIdx.x; e < halves * ROW_TILE * len; e += blockDim.x) {
			int h = e / (ROW_TILE * len), rr = e / len % ROW_TILE, kk = e % len;
			int t = base + h, r = t % rowTiles * ROW_TILE + rr;
			float v = 0.0f;
			if (t < tiles && r < rows) {
				v = scale[images[(size_t)idx[r] * IMAGE_SIZE + t / rowTiles * len + kk]];
			}
			xs[h][rr][kk] = v;
		}
		__syncthreads();
		int t = base + half;
		if (t >= tiles) {
			continue;
		}
		int p = t / rowTiles, r0 = t % rowTiles * ROW_TILE;
		float acc[ROW_TILE];
		for (int rr = 0; rr < ROW_TILE; rr++) {
			acc[rr] = 0.0f;
		}
		const float *col = w1 + (size_t)p * len * HIDDEN1 + j;
#pragma unroll 8
		for (int kk = 0; kk < len; kk++) {
			float wv = __ldcg(&col[kk * HIDDEN1]);
			for (int rr = 0; rr < ROW_TILE; rr++) {
				acc[rr] = __fmaf_rn(xs[half][rr][kk], wv, acc[rr]);
			}
		}
		for (int rr = 0; rr < ROW_TILE && r0 + rr < rows; rr++) {
			part[(p * rows + r0 + rr) * HIDDEN1 + j] = acc[rr];
		}
	}
}

// first_layer_rows is phase B: each of the block's rows of the batch, the
// parts summed in order, then the bias and ReLU, then dense_row_rest, with
// W2 staged in scratch (SCRATCH_FLOATS). The block takes groups rows at a
// time (1, 2 or 4: PERSIST_THREADS/groups threads a row, at least
// HIDDEN2), so that at large batches a block's rows do not wait for each
// other.
#define MAX_ROW_GROUPS 4
__device__ void first_layer_rows(const unsigned char *labels, const int *idx, int rows, int groups,
				 const float *w, const int *off, const float *part, int parts, float *h1, float *h2,
				 float *logprobs, float *dlogits, float *stats, float *dh2, float *dh1, float *scratch)
{
	__shared__ float a1[MAX_ROW_GROUPS][HIDDEN1], a2[MAX_ROW_GROUPS][HIDDEN2], d2[MAX_ROW_GROUPS][HIDDEN2];
	__shared__ float z3[MAX_ROW_GROUPS][CLASSES];
	int width = blockDim.x / groups, grp = threadIdx.x / width;
	if (blockIdx.x * groups < rows) {
		stage_w2<true>(w + off[2], scratch); // read after dense_row_rest's first barrier
	}
	for (int base = blockIdx.x * groups; base < rows; base += gridDim.x * groups) {
		int r = base + grp;
		rowGroup g = {(int)threadIdx.x % width, width, r < rows, a1[grp], a2[grp], d2[grp], z3[grp], scratch};
		for (int i = g.tx; g.active && i < HIDDEN1; i += width) {
			float z = 0.0f;
			for (int p = 0; p < parts; p++) {
				z += __ldcg(&part[(p * rows + r) * HIDDEN1 + i]);
			}
			float v = z + __ldcg(&w[off[1] + i]);
			if (v < 0.0f) {
				v = 0.0f;
			}
			g.a1[i] = v;
			h1[r * HIDDEN1 + i] = v;
		}
		dense_row_rest<true>(r, g, w + off[3], w + off[4], w + off[5], g.active ? (int)labels[idx[r]] : 0,
			       rows, 1, h2, logprobs, dlogits, stats, dh2, dh1);
	}
}

// train_steps: see above. Parameters, gradients and the optimizer's slots
// are the flat buffers (n floats, tensors at off1..off5); part holds parts
// x rows x HIDDEN1 floats (parts divides IMAGE_SIZE, into parts of at most
// MAX_PART_LEN), groups is first_layer_rows's, h1..dh1 a batch's rows; bar is BAR_WORDS zeroed words for
// grid_sync; step0 is the number of updates done before the first of these
// steps; phases says which phases run (PHASE_*); the optimizer's arguments,
// rates and nrates (adam_rate_at's table) with them, are fused_update's.
// After each step the totals and the batch's mean loss are as finish_step
// leaves them. A launch of another block size or parts
// or groups traps (the whole grid, so no block waits at a barrier for it).
extern "C" __global__ void train_steps(const unsigned char *images, const unsigned char *labels, const int *order,
				       int lo, int count, int rows, float *w, float *g, float *s0, float *s1, int n,
				       int off1, int off2, int off3, int off4, int off5, float *part, int parts, int groups,
				       float *h1, float *h2, float *logprobs, float *dlogits, float *stats, float *dh2,
				       float *dh1, double *totals, float *mean, unsigned int *bar, long long step0, int phases,
				       int optimizer, double beta1, double beta2, double lr, float eps, float mu,
				       const float *rates, int nrates)
{
	if (blockDim.x != PERSIST_THREADS || parts < 1 || IMAGE_SIZE % parts != 0 || IMAGE_SIZE / parts > MAX_PART_LEN ||
	    (groups != 1 && groups != 2 && groups != MAX_ROW_GROUPS)) {
		__trap();
	}
	__shared__ float scale[256];
	__shared__ float scratch[SCRATCH_FLOATS];
	const int off[6] = {0, off1, off2, off3, off4, off5};
	const int w1Items = IMAGE_SIZE / GRAD_TILE * HIDDEN1;
	const int tid = blockIdx.x * blockDim.x + threadIdx.x, threads = blockDim.x * gridDim.x;
	// Phases A and C read the pixel table; nothing else writes it.
	pixel_scale(scale);
	for (int s = 0; s < count; s++) {
		const int *idx = order + lo + s * rows;
		if (phases & PHASE_FIRST) {
			first_layer_parts(images, idx, rows, w, scale, parts, part, scratch);
		}
		grid_sync(bar);

		if (phases & PHASE_ROWS) {
			first_layer_rows(labels, idx, rows, groups, w, off, part, parts, h1, h2, logprobs, dlogits, stats, dh2,
					 dh1, scratch);
		}
		grid_sync(bar);

		if (phases & PHASE_UPDATE) {
			// The grid's last block: the parameters (about 21,500
			// items) leave it free on a GPU of 85 SMs or more. The
			// whole block loads the rows' results at once.
			if (blockIdx.x == gridDim.x - 1) {
				block_accumulate(stats, rows, totals, mean);
			}
			float alpha = optimizer == FUSED_ADAM
					      ? adam_rate_at(rates, nrates, beta1, beta2, lr, step0 + s + 1)
					      : 0.0f;
			// W1's gradients GRAD_TILE inputs at a time (the unit
			// fastest: a warp reads a row of dh1 in one go), then one
			// thread a parameter of the other tensors.
			for (int q = tid; q < w1Items + n - off1; q += threads) {
				if (q >= w1Items) {
					int k = off1 + q - w1Items;
					float gk;
					if (fused_gradient<true>(k, off, 0, h1, h2, dh1, dh2, dlogits, rows, &gk)) {
						update_element(k, gk, w, g, s0, s1, optimizer, beta1, beta2, lr, alpha, eps, mu);
					}
					continue;
				}
				int j = q % HIDDEN1, i0 = q / HIDDEN1 * GRAD_TILE;
				float acc[GRAD_TILE];
				for (int t = 0; t < GRAD_TILE; t++) {
					acc[t] = 0.0f;
				}
				// Unrolled so that several rows' loads are in flight
				// at once: the sums still run in row order.
#pragma unroll 8
				for (int r = 0; r < rows; r++) {
					float d = __ldcg(&dh1[r * HIDDEN1 + j]);
					const unsigned char *px = images + (size_t)idx[r] * IMAGE_SIZE + i0;
					for (int t = 0; t < GRAD_TILE; t++) {
						acc[t] = __fmaf_rn(scale[px[t]], d, acc[t]);
					}
				}
				for (int t = 0; t < GRAD_TILE; t++) {
					update_element((i0 + t) * HIDDEN1 + j, acc[t], w, g, s0, s1, optimizer, beta1, beta2,
						       lr, alpha, eps, mu);
				}
			}
		}
		grid_sync(bar);
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
