# MNIST MLP in Go with Gorgonia. `make help` lists the targets.
GO          ?= go
BIN         := bin
TRAIN_FLAGS ?=
# Where make train and make train-cuda save the model, and make serve reads it
# (bin/ is git-ignored; make clean removes it).
MODEL       ?= $(BIN)/model.safetensors
# Where make serve listens: this machine only, unless told otherwise.
ADDR        ?= 127.0.0.1:8080
# The -tags cuda build: see scripts/build-cuda.sh and the README's GPU section.
CUDA_HOME   ?=

.PHONY: help cpu-deps data build train serve test test-short vet fuzz mutate bench build-cuda train-cuda test-cuda test-cuda-cpu bench-cuda-host gen-ptx gen-kernels gpu-bundle clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

data: build ## download and verify MNIST into the data folder (DATA_DIR=... to choose it)
	$(BIN)/train -download-only $(if $(DATA_DIR),-data-dir "$(DATA_DIR)")

# The CPU build uses an adapted copy of Gorgonia (scripts/cpu-deps.sh writes it
# and go.cpu.mod): the same results, without a thread hand-over per step.
CPU_MOD := -modfile go.cpu.mod

cpu-deps:
	@bash scripts/cpu-deps.sh

build: cpu-deps ## build the CPU binary bin/train (no cgo needed)
	CGO_ENABLED=0 $(GO) build $(CPU_MOD) -o $(BIN)/train ./cmd/train

train: build ## train 5 epochs on the CPU, print test accuracy and loss, save the model to MODEL (TRAIN_FLAGS=... to change)
	$(BIN)/train $(if $(DATA_DIR),-data-dir "$(DATA_DIR)") -save "$(MODEL)" $(TRAIN_FLAGS)

serve: build ## draw digits in the browser: serve MODEL (from make train) at http://ADDR/ until Ctrl-C
	@test -f "$(MODEL)" || { echo "no model at $(MODEL): run 'make train' first (it saves one there), or give MODEL=FILE"; exit 1; }
	$(BIN)/train -load "$(MODEL)" -serve $(ADDR)

test: cpu-deps ## run the whole test suite (downloads MNIST if missing)
	$(GO) test $(CPU_MOD) ./...

test-short: cpu-deps ## the suite without the 5-epoch end-to-end run and the resume runs
	$(GO) test $(CPU_MOD) -short ./...

vet: ## go vet and gofmt checks
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

fuzz: ## run every fuzzer for FUZZTIME each (default 1m; PARALLEL=n workers) and print a table
	FUZZTIME=$(or $(FUZZTIME),1m) PARALLEL=$(PARALLEL) GO=$(GO) bash scripts/fuzz.sh

mutate: ## mutation pass over data/ and the model and checkpoint file formats (scripts/mutate; MUTATE_FLAGS=...)
	$(GO) run ./scripts/mutate $(or $(MUTATE_FLAGS),-j 2)

bench: ## benchmark CPU training against a PyTorch reference (scripts/bench.sh)
	bash scripts/bench.sh

build-cuda: ## build bin/train-cuda, whose -engine gorgonia|native|cudagraph|fused|persistent runs on the GPU (needs a CUDA toolkit; CUDA_HOME=...)
	bash scripts/build-cuda.sh

train-cuda: build-cuda ## train on the GPU and save bin/model.safetensors (TRAIN_FLAGS: -gpu N picks the device, -engine native, cudagraph, fused or persistent our own CUDA engines)
	$(BIN)/train-cuda $(if $(DATA_DIR),-data-dir "$(DATA_DIR)") -save "$(MODEL)" $(TRAIN_FLAGS)

test-cuda: ## cuda-tagged tests of gpu/ (GPU parity tests skip without a GPU)
	bash scripts/build-cuda.sh go test ./gpu/

test-cuda-cpu: ## the cuda build's GPU tests and trainer tests on a machine without a GPU: our kernels run on the CPU (scripts/test-cuda-cpu.sh)
	bash scripts/test-cuda-cpu.sh

bench-cuda-host: ## the host's share of a GPU training step per engine, on any machine: the cuda build against a driver that does no GPU work (scripts/host-overhead.sh)
	bash scripts/host-overhead.sh

gen-ptx: ## regenerate gpu/kernels/gorgonia/*.ptx and gpu/ptx_cuda.go from Gorgonia's CUDA kernels (go generate; needs nvcc, no GPU)
	$(GO) generate -run 'gen-ptx\.sh' ./gpu/

gen-kernels: ## regenerate gpu/kernels/*.ptx and gpu/kernels_ptx_cuda.go from gpu/kernels/*.cu (go generate; needs nvcc, no GPU)
	$(GO) generate -run 'gen-kernels\.sh' ./gpu/

gpu-bundle: ## pack toolchain, vendored modules and MNIST into .gpu-bundle/ for a GPU host without Go
	bash scripts/gpu-bundle.sh

clean: ## remove build outputs (not the downloaded data)
	rm -rf $(BIN) build .cuda-deps go.cuda.mod go.cuda.sum .cpu-deps go.cpu.mod go.cpu.sum .gpu-bundle .gpu-host vendor
