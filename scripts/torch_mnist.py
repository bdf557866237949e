#!/usr/bin/env python3
"""PyTorch reference for the Gorgonia MNIST MLP in cmd/train (used by scripts/bench.sh).

Same model and hyperparameters as our binary:
  Flatten(784) -> Dense(128, ReLU) -> Dense(64, ReLU) -> Dense(10, softmax)
  glorot-uniform weights, zero biases, pixels / 255, categorical cross-entropy
  (mean over the batch), Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-7),
  5 epochs, batch 32, reshuffled every epoch by a seeded generator,
  evaluation over all 10,000 test images (accuracy and mean loss per image).

Usage:
  python3 scripts/torch_mnist.py [--device cpu|cuda] [--mode eager|graph|compile]
      [--adam auto|default|fused] [--epochs 5] [--batch-size 32] [--lr 0.001] [--seed 1]
      [--threads N] [--data-dir DIR] [--json]
  python3 scripts/torch_mnist.py --which-blas

Modes (the configurations a PyTorch user would try):
  eager    plain PyTorch, one kernel launch per op (the default)
  graph    CUDA only: the whole training step (batch gather from the epoch's order
           at a place kept on the device, forward, backward, Adam(capturable=True),
           running loss and hits) captured once with torch.cuda.graph and replayed
           every full batch, the only host work a step; a last partial batch runs
           eagerly
  compile  torch.compile of the model (mode "reduce-overhead" on CUDA, which
           itself replays CUDA graphs; the default mode on the CPU); needs torch 2
  Warm-up for graph and compile (capture, compilation) happens before the clock
  starts and leaves the weights and the optimizer as they were.

Adam (--adam): "default" is torch's own choice, from torch 2 on CUDA the
multi-tensor (foreach) update, about fifteen kernels a step; "fused" is one
kernel for every parameter (CUDA only with torch 1.13). "auto", the default, is fused for graph
and compile on CUDA, the modes meant as PyTorch at its fastest, and torch's
default for eager, PyTorch as most code is written. The same update either way.

  e.g. OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/torch_mnist.py --threads 2 --json

--which-blas prints the BLAS library torch's CPU products run on, as KIND PATH
(see blas_library), and exits; scripts/bench.sh checks it before it times anything.

Reads the four standard gzipped IDX files (train-images-idx3-ubyte.gz, ...) from
--data-dir (default ~/.cache/mnist-gorgonia). Needs only torch (no torchvision, no numpy).
With --json, the last stdout line is one JSON object using the same field names as the
"evaluation" log entry of our binary (msg, test_accuracy, test_loss, train_seconds, ...).
"""

import argparse
import gzip
import json
import os
import re
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


# A loaded library that is a CPU BLAS: its file name (not cuBLAS's libcublas).
BLAS_FILE = re.compile(r"lib(open)?blas|libmkl_(rt|core)|libblis|lib[st]atlas")
# Which BLAS it is, by the folder Debian's alternatives keep it in
# (.../openblas-pthread/libblas.so.3) or by its own name (libopenblas.so.0).
BLAS_KINDS = (("openblas", "openblas"), ("mkl", "mkl"), ("blis", "blis"), ("atlas", "atlas"))


def blas_kind(path):
    """The kind of CPU BLAS the shared library at path is (openblas, mkl, blis,
    atlas, reference: the netlib one in Debian's .../blas/ folder, or other),
    or None when it is no CPU BLAS."""
    if not BLAS_FILE.match(os.path.basename(path)):
        return None
    where = path.lower()
    for needle, kind in BLAS_KINDS:
        if needle in where:
            return kind
    if os.path.basename(os.path.dirname(path)) == "blas":
        return "reference"
    return "other"


def blas_library():
    """The BLAS library torch's CPU matrix products run on: "KIND PATH" for the
    first CPU BLAS this process mapped (Linux; see blas_kind), "built-in -"
    where torch carries its own (pip wheels link MKL in), or "unknown -"
    without /proc. Debian's python3-torch calls whatever libblas.so.3 the
    alternatives system points at: the netlib reference unless an optimised
    one is installed, and on it a step at batch 32 takes about 5x as long as
    on OpenBLAS, which would flatter any comparison with PyTorch."""
    torch.ones(2, 2) @ torch.ones(2, 2)  # a product, so a lazily loaded BLAS is mapped
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if ".so" in line})
    except OSError:
        return "unknown -"
    for path in paths:
        kind = blas_kind(path)
        if kind is not None:
            return f"{kind} {path}"
    return "built-in -"


def adam_kind(choice, mode, device):
    """The Adam update --adam asks for: fused or default (torch's own choice)."""
    if choice == "auto":
        return "fused" if device.type == "cuda" and mode in ("graph", "compile") else "default"
    return choice


def read_idx(path):
    """Parse a gzipped IDX file into a uint8 tensor of its declared shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    count = 1
    for d in dims:
        count *= d
    if len(raw) - offset != count:
        raise ValueError(f"{path}: expected {count} data bytes, found {len(raw) - offset}")
    # bytearray: torch.frombuffer wants a writable buffer.
    return torch.frombuffer(bytearray(raw[offset:]), dtype=torch.uint8).reshape(dims)


def load_mnist(data_dir):
    out = {}
    for key, name in FILES.items():
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            sys.exit(f"torch_mnist: missing {path} (put the four MNIST .gz files in --data-dir)")
        out[key] = read_idx(path)
    x_train = out["train_images"].reshape(-1, 784).float().div_(255.0)
    x_test = out["test_images"].reshape(-1, 784).float().div_(255.0)
    y_train = out["train_labels"].long()
    y_test = out["test_labels"].long()
    if x_train.shape[0] != y_train.shape[0] or x_test.shape[0] != y_test.shape[0]:
        sys.exit("torch_mnist: image/label count mismatch")
    return x_train, y_train, x_test, y_test


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)
        for layer in (self.fc1, self.fc2, self.fc3):
            # Glorot/Xavier uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)); zero biases.
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        # Logits: the softmax is fused into F.cross_entropy (log-softmax + NLL), which is
        # the numerically stable equivalent of softmax followed by categorical cross-entropy.
        return self.fc3(x)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(model, x, y, batch_size):
    """Accuracy and mean loss per image over all of x (last partial batch included)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            logits = model(x[i : i + batch_size])
            yb = y[i : i + batch_size]
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            correct += (logits.argmax(dim=1) == yb).sum()
    n = x.shape[0]
    return correct.item() / n, loss_sum.item() / n


def accumulate(loss_sum, correct, loss, logits, yb):
    """Add a batch's summed loss and its hits to the running totals, on the device."""
    with torch.no_grad():
        loss_sum += loss.detach().double() * yb.shape[0]
        correct += (logits.argmax(dim=1) == yb).sum()


class GraphedStep:
    """One full training step captured as a CUDA graph (torch.cuda.graph).

    Everything a step does is in the graph, as in our own engines: it reads
    its batch's image numbers from the epoch's order at a place kept on the
    device, moves that place on, and adds the batch's loss and hits to the
    running totals. A step is then one replay and nothing else on the host.
    Capture needs a few warm-up steps on a side stream first; they are real
    optimizer steps, so the weights and Adam's state are put back afterwards,
    in place (the graph holds their addresses).

    The gradients are None when capture starts, so the captured backward
    writes them afresh in memory of the graph's own (torch.cuda.graph's
    whole-network recipe); a replay needs no zeroing before it. A step run
    eagerly must zero them first, in place.
    """

    def __init__(self, model, opt, x_train, y_train, batch_size, loss_sum, correct, warmup=3):
        dev = x_train.device
        self.model, self.opt = model, opt
        self.order = torch.zeros(x_train.shape[0], dtype=torch.long, device=dev)
        self.place = torch.zeros((), dtype=torch.long, device=dev)
        self.offsets = torch.arange(batch_size, dtype=torch.long, device=dev)
        saved = [p.detach().clone() for p in model.parameters()]
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                opt.zero_grad(set_to_none=True)
                self.place.zero_()
                self._step(x_train, y_train, loss_sum, correct)
        torch.cuda.current_stream(dev).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        self.place.zero_()
        with torch.cuda.graph(self.graph):
            self._step(x_train, y_train, loss_sum, correct)
        # Back to the initial weights and a fresh Adam, in the same memory
        # (each epoch starts its totals at zero).
        with torch.no_grad():
            for p, s in zip(model.parameters(), saved):
                p.copy_(s)
            for state in opt.state.values():
                for v in state.values():
                    if torch.is_tensor(v):
                        v.zero_()
        torch.cuda.synchronize(dev)

    def _step(self, x_train, y_train, loss_sum, correct):
        idx = self.order[self.place + self.offsets]
        self.place += self.offsets.shape[0]
        xb, yb = x_train[idx], y_train[idx]
        logits = self.model(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        self.opt.step()
        accumulate(loss_sum, correct, loss, logits, yb)

    def start_epoch(self, perm):
        """Put the epoch's order on the device and its place at the start."""
        self.order.copy_(perm)
        self.place.zero_()

    def run(self):
        self.graph.replay()


def warm_up_compiled(model, opt, xb, yb, steps=3):
    """Compile a torch.compile'd model's forward and backward (and, in mode
    "reduce-overhead", record their CUDA graphs) before the clock starts,
    with no optimizer step, so the weights stay as they were.

    Each backward starts with the gradients set to None, as a training step
    does: under CUDA graph trees a backward's gradients are the graph's
    output memory, which the next replay overwrites, so a backward that
    accumulated into the last one's .grad would fail ("accessing tensor
    output of CUDAGraphs that has been overwritten by a subsequent run").
    The gradients are None afterwards too."""
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
    opt.zero_grad(set_to_none=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--mode", choices=["eager", "graph", "compile"], default="eager",
                   help="eager, graph (CUDA: the step captured as a CUDA graph) or compile (torch.compile)")
    p.add_argument("--adam", choices=["auto", "default", "fused"], default="auto",
                   help="Adam's update: torch's default (foreach on CUDA from torch 2), fused (one kernel), "
                   "or auto: fused for graph and compile on CUDA, default otherwise")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    p.add_argument("--data-dir", default=os.path.expanduser("~/.cache/mnist-gorgonia"))
    p.add_argument("--json", action="store_true", help="print one JSON evaluation line at the end")
    p.add_argument("--which-blas", action="store_true",
                   help="print the BLAS library torch's CPU products run on (KIND PATH) and exit")
    args = p.parse_args()
    if args.which_blas:
        print(blas_library())
        return
    if args.epochs < 1 or args.batch_size < 1:
        sys.exit("torch_mnist: --epochs and --batch-size must be >= 1")
    if args.mode == "graph" and args.device != "cuda":
        sys.exit("torch_mnist: --mode graph needs --device cuda")
    if args.mode == "compile" and not hasattr(torch, "compile"):
        sys.exit(f"torch_mnist: --mode compile needs torch 2 (this is torch {torch.__version__})")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_mnist: --device cuda but torch.cuda.is_available() is False")
        device = torch.device("cuda", torch.cuda.current_device())
        device_label = "torch-cuda:" + torch.cuda.get_device_name(device)
    else:
        device = torch.device("cpu")
        device_label = "torch-cpu"

    x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    # Move the whole data set to the device once, so each step is device-only work.
    x_train, y_train = x_train.to(device), y_train.to(device)
    x_test, y_test = x_test.to(device), y_test.to(device)
    n_train = x_train.shape[0]

    model = MLP().to(device)
    # Note: torch's Adam adds eps to sqrt(v_hat) (after bias correction), whereas Keras adds
    # its epsilon to sqrt(v_t) before the step-size correction ("epsilon hat"). With eps=1e-7
    # the difference is negligible for this model.
    adam_args = {"lr": args.lr, "betas": (0.9, 0.999), "eps": 1e-7}
    if args.mode == "graph":
        adam_args["capturable"] = True  # its step count stays on the device
    adam = adam_kind(args.adam, args.mode, device)
    if adam == "fused":
        adam_args["fused"] = True
    try:
        opt = torch.optim.Adam(model.parameters(), **adam_args)
    except (RuntimeError, TypeError, ValueError) as e:
        sys.exit(f"torch_mnist: Adam({adam}) on {device.type}: {str(e).splitlines()[0]}")
    shuffle_gen = torch.Generator()  # CPU generator: same permutations on cpu and cuda
    shuffle_gen.manual_seed(args.seed)

    if device.type == "cuda":
        # Create the CUDA context and cuBLAS handle outside the timed region (one-off
        # initialisation, not training work). Model weights are untouched.
        torch.ones(8, 8, device=device) @ torch.ones(8, 8, device=device)
        sync(device)

    # Running sums stay on the device, in the same memory all along (a
    # captured step adds to them): no host sync per step.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    step_fn = None
    if args.mode == "graph" and args.batch_size > n_train:
        sys.exit(f"torch_mnist: --mode graph needs --batch-size at most {n_train}, the training set's size")
    if args.mode == "graph":
        step_fn = GraphedStep(model, opt, x_train, y_train, args.batch_size, loss_sum, correct)
    elif args.mode == "compile":
        model = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else "default")
        warm_up_compiled(model, opt, x_train[: args.batch_size], y_train[: args.batch_size])
        sync(device)
    device_label += "" if args.mode == "eager" else f" ({args.mode})"

    blas = blas_library()
    print(
        f"torch {torch.__version__} device={device_label} threads={torch.get_num_threads()} blas={blas.split()[0]} adam={adam} "
        f"train={n_train} test={x_test.shape[0]} epochs={args.epochs} batch={args.batch_size} "
        f"lr={args.lr} seed={args.seed}",
        flush=True,
    )

    epoch_seconds = []
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n_train, generator=shuffle_gen).to(device)
        loss_sum.zero_()
        correct.zero_()
        if step_fn is not None:
            step_fn.start_epoch(perm)
        sync(device)
        t0 = time.perf_counter()
        for i in range(0, n_train, args.batch_size):
            if step_fn is not None and i + args.batch_size <= n_train:
                step_fn.run()  # the step at place i of perm, totals included
                continue
            idx = perm[i : i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            # In graph mode in place: the graph holds the gradients' memory.
            opt.zero_grad(set_to_none=step_fn is None)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)  # mean over the batch
            loss.backward()
            opt.step()
            accumulate(loss_sum, correct, loss, logits, yb)
        sync(device)
        dt = time.perf_counter() - t0
        epoch_seconds.append(dt)
        train_seconds += dt
        print(
            f"epoch {epoch}/{args.epochs}: loss={loss_sum.item() / n_train:.4f} "
            f"acc={correct.item() / n_train:.4f} seconds={dt:.3f}",
            flush=True,
        )

    test_acc, test_loss = evaluate(model, x_test, y_test, 1000)
    sps = args.epochs * n_train / train_seconds
    print(
        f"test: accuracy={test_acc * 100:.2f}% loss={test_loss:.4f} "
        f"train_seconds={train_seconds:.3f} samples/s={sps:.0f}",
        flush=True,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "msg": "evaluation",
                    "test_accuracy": test_acc,
                    "test_loss": test_loss,
                    "test_images": x_test.shape[0],
                    "train_seconds": train_seconds,
                    "samples_per_second": sps,
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "lr": args.lr,
                    "seed": args.seed,
                    "device": device_label,
                    "seconds_per_epoch": train_seconds / args.epochs,
                    "epoch_seconds": epoch_seconds,
                    "torch_version": torch.__version__,
                    "mode": args.mode,
                    "threads": torch.get_num_threads(),
                    "blas": blas,
                    "adam": adam,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
