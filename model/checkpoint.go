package model

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"gorgonia.org/tensor"

	"mnist/data/fileio"
	"mnist/model/tensorfile"
)

// A checkpoint is a safetensors file too, so that the usual tools can look
// inside one, but it is not a model file (-load rejects it, having more
// tensors): besides the six parameters, in the training dtype (F32; F64
// for float64 test configs), it holds
//
//	<optimizer>.<slot>.<param>  F64, the parameter's stored shape
//	shuffle.order               I64 [training images]
//
// where the slots are the optimizer's own state tensors (Adam's m and v,
// SGD's velocity), and in __metadata__ the format, the optimizer's name,
// step count and settings, epoch, step and running totals of a partial
// epoch, the shuffle generator's state (base64 of rand.PCG's binary form),
// the hyperparameters a resumed run must share, the run's target number
// of epochs (which a resumed run takes unless told otherwise), the model
// file its weights started from (if any), and a SHA-256 checksum of
// everything else, so that a damaged file is found before it is used.
// Floats are written with the fewest digits that read back exactly.
//
// The optimizer's slots are F64 so that one format holds either dtype's
// state exactly: float32 moments widen and narrow back without change, so a
// resumed run continues bit for bit.

// CheckpointFormat is the "format" metadata value of checkpoint files.
const CheckpointFormat = "mnist-checkpoint/2"

// ErrCheckpointNotModel is DecodeSafetensors' answer to a checkpoint: it is
// a safetensors file too, but holds the optimiser's state besides the
// weights and is read with LoadCheckpoint.
var ErrCheckpointNotModel = errors.New("this is a training checkpoint, not a model file")

// maxCheckpointSize caps a file before it is read: the header, the
// parameters and two optimizer slots in float64, and an order of up to 2^20
// images (MNIST has 60,000) are far below it.
const maxCheckpointSize = 64 << 20

// Checkpoint is everything needed to carry on training exactly.
type Checkpoint struct {
	// Config holds the hyperparameters the run used. Epochs is the run's
	// target, which a resumed run may change; 0 when the file does not
	// record it (EncodeCheckpoint leaves it out then).
	Config    Config
	Params    *Params
	Optimizer *OptimizerState
	Train     TrainState
	// InitialWeights names the model file the run's weights started from
	// ("": the seed's initialisation), so that a resumed run's model file
	// still says where its weights came from.
	InitialWeights string
}

// Checkpoint metadata keys and tensor names besides the parameters'.
const (
	orderName        = "shuffle.order"
	optimizerKey     = "optimizer"
	optimizerStepKey = "optimizer_step"
	targetEpochsKey  = "target_epochs"
	initialKey       = "initial_weights"
	// settingPrefix + a Setting's name holds its value: "optimizer.lr".
	settingPrefix = "optimizer."
)

// EncodeCheckpoint writes c as a safetensors file.
func EncodeCheckpoint(w io.Writer, c *Checkpoint) error {
	if c.Params == nil || c.Optimizer == nil {
		return errors.New("encode checkpoint: no parameters or no optimizer state")
	}
	if err := c.Optimizer.Check(); err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	slots, err := c.Optimizer.SlotNames()
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	names, shapes := ParamNames(), fileShapes()
	var items []tensorfile.Tensor
	for i, t := range c.Params.Tensors {
		if t == nil || t.Shape().TotalSize() != paramShapes()[i].TotalSize() {
			return fmt.Errorf("encode checkpoint: %s is missing or has the wrong size", names[i])
		}
		switch d := t.Data().(type) {
		case []float32:
			items = append(items, tensorfile.Tensor{Name: names[i], Dtype: "F32", Shape: shapes[i], Data: tensorfile.Float32Bytes(d)})
		case []float64:
			items = append(items, tensorfile.Tensor{Name: names[i], Dtype: "F64", Shape: shapes[i], Data: tensorfile.Float64Bytes(d)})
		default:
			return fmt.Errorf("encode checkpoint: %s has unsupported dtype %v", names[i], t.Dtype())
		}
	}
	for k, slot := range slots {
		for i := range names {
			items = append(items, tensorfile.Tensor{Name: c.Optimizer.TensorName(slot, i), Dtype: "F64", Shape: shapes[i], Data: tensorfile.Float64Bytes(c.Optimizer.Slots[k][i])})
		}
	}
	order := make([]byte, 0, 8*len(c.Train.Order))
	for _, x := range c.Train.Order {
		order = binary.LittleEndian.AppendUint64(order, uint64(x))
	}
	items = append(items, tensorfile.Tensor{Name: orderName, Dtype: "I64", Shape: []int{len(c.Train.Order)}, Data: order})

	out, err := tensorfile.EncodeSealed(items, checkpointMetadata(c))
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// checkpointMetadata is c's __metadata__ without the checksum.
func checkpointMetadata(c *Checkpoint) map[string]string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	meta := map[string]string{
		"format":         CheckpointFormat,
		"architecture":   Architecture,
		"epoch":          strconv.Itoa(c.Train.Epoch),
		"step":           strconv.Itoa(c.Train.Step),
		"loss_sum":       f(c.Train.LossSum),
		"correct":        strconv.Itoa(c.Train.Correct),
		"seen":           strconv.Itoa(c.Train.Seen),
		"shuffle":        base64.StdEncoding.EncodeToString(c.Train.Shuffle),
		"seed":           strconv.FormatUint(c.Config.Seed, 10),
		"batch_size":     strconv.Itoa(c.Config.BatchSize),
		"dtype":          c.Config.Dtype.String(),
		optimizerKey:     c.Optimizer.Name,
		optimizerStepKey: strconv.FormatInt(c.Optimizer.Step, 10),
	}
	for _, s := range c.Config.Optimizer.Settings() {
		meta[settingPrefix+s.Name] = f(s.Value)
	}
	if c.Config.Epochs > 0 {
		meta[targetEpochsKey] = strconv.Itoa(c.Config.Epochs)
	}
	if c.InitialWeights != "" {
		meta[initialKey] = c.InitialWeights
	}
	return meta
}

// metaReader parses required metadata fields, keeping the first error so
// that a broken file gets one line naming one field.
type metaReader struct {
	meta map[string]string
	err  error
}

func (r *metaReader) fail(k string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("metadata %q: %w", k, err)
	}
}

func (r *metaReader) int(k string) int {
	v, err := strconv.Atoi(r.meta[k])
	if err != nil {
		r.fail(k, err)
	}
	return v
}

func (r *metaReader) float(k string) float64 {
	v, err := strconv.ParseFloat(r.meta[k], 64)
	if err != nil {
		r.fail(k, err)
	}
	return v
}

// DecodeCheckpoint parses a file written by EncodeCheckpoint. Errors are one
// line naming the problem (the field or tensor, where there is one); it
// never panics on bad input. Values no run can produce (a negative second
// moment, a step count or batch size out of range) are refused here, not
// left to fail later as a diverged run.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	f, err := tensorfile.Split(b)
	if err != nil {
		return nil, err
	}
	meta := f.Meta
	if meta["format"] != CheckpointFormat {
		return nil, fmt.Errorf("format is %q, want %q (not a checkpoint of this program's version?)", meta["format"], CheckpointFormat)
	}
	if err := f.Verify(); err != nil {
		return nil, err
	}
	ts, err := f.Tensors()
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Config: DefaultConfig()}
	c.Config.Epochs = 0 // unless the file records the target
	r := &metaReader{meta: meta}
	c.Train.Epoch, c.Train.Step = r.int("epoch"), r.int("step")
	_, recorded := meta[targetEpochsKey]
	if recorded {
		c.Config.Epochs = r.int(targetEpochsKey)
	}
	c.Train.LossSum, c.Train.Correct, c.Train.Seen = r.float("loss_sum"), r.int("correct"), r.int("seen")
	c.InitialWeights = meta[initialKey]
	c.Config.BatchSize = r.int("batch_size")
	if c.Config.Seed, err = strconv.ParseUint(meta["seed"], 10, 64); err != nil {
		r.fail("seed", err)
	}
	if c.Train.Shuffle, err = base64.StdEncoding.DecodeString(meta["shuffle"]); err != nil {
		r.fail("shuffle", err)
	}
	switch meta["dtype"] {
	case tensor.Float32.String():
		c.Config.Dtype = tensor.Float32
	case tensor.Float64.String():
		c.Config.Dtype = tensor.Float64
	default:
		r.fail("dtype", fmt.Errorf("%q is not float32 or float64", meta["dtype"]))
	}
	opt := &c.Config.Optimizer
	opt.Name = meta[optimizerKey]
	c.Optimizer = &OptimizerState{Name: opt.Name}
	if c.Optimizer.Step, err = strconv.ParseInt(meta[optimizerStepKey], 10, 64); err != nil {
		r.fail(optimizerStepKey, err)
	}
	if r.err != nil {
		return nil, r.err
	}
	slots, err := c.Optimizer.SlotNames()
	if err != nil {
		return nil, fmt.Errorf("metadata %q: %w", optimizerKey, err)
	}
	settings := opt.Settings()
	for i, s := range settings {
		settings[i].Value = r.float(settingPrefix + s.Name)
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := opt.Set(settings); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := c.Config.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}

	wantTensors := 6*(1+len(slots)) + 1
	if len(ts) != wantTensors {
		return nil, fmt.Errorf("%d tensors, want %d (parameters, %s's state, shuffle order)", len(ts), wantTensors, opt.Name)
	}
	names, shapes := ParamNames(), fileShapes()
	c.Params = &Params{}
	c.Optimizer.Slots = make([][6][]float64, len(slots))
	for i, name := range names {
		pt, err := newZeroTensor(c.Config.Dtype, paramShapes()[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch d := pt.Data().(type) {
		case []float32:
			b, err := tensorfile.Take(ts, name, "F32", shapes[i])
			if err != nil {
				return nil, err
			}
			tensorfile.Float32s(d, b)
		case []float64:
			b, err := tensorfile.Take(ts, name, "F64", shapes[i])
			if err != nil {
				return nil, err
			}
			copy(d, tensorfile.Float64s(b))
		}
		c.Params.Tensors[i] = pt
		for k, slot := range slots {
			b, err := tensorfile.Take(ts, c.Optimizer.TensorName(slot, i), "F64", shapes[i])
			if err != nil {
				return nil, err
			}
			c.Optimizer.Slots[k][i] = tensorfile.Float64s(b)
		}
	}
	if name, at, v := c.Params.firstNonFiniteParam(); name != "" {
		return nil, fmt.Errorf("tensor %q[%d] is %v", name, at, v)
	}
	r0, ok := ts[orderName]
	if !ok || len(r0.Shape) != 1 {
		return nil, fmt.Errorf("tensor %q is missing or not one-dimensional", orderName)
	}
	ob, err := tensorfile.Take(ts, orderName, "I64", r0.Shape)
	if err != nil {
		return nil, err
	}
	c.Train.Order = make([]int, len(ob)/8)
	for i := range c.Train.Order {
		x := int64(binary.LittleEndian.Uint64(ob[8*i:]))
		if x < 0 || x >= int64(len(c.Train.Order)) {
			return nil, fmt.Errorf("tensor %q holds %d, not an image number below %d", orderName, x, len(c.Train.Order))
		}
		c.Train.Order[i] = int(x)
	}
	if c.Config.BatchSize > len(c.Train.Order) {
		return nil, fmt.Errorf("metadata \"batch_size\": %d is larger than the %d training images of %q", c.Config.BatchSize, len(c.Train.Order), orderName)
	}
	if err := c.Train.check(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if recorded {
		if err := checkTarget(c.Config.Epochs, c.Train); err != nil {
			return nil, fmt.Errorf("metadata %q: %w", targetEpochsKey, err)
		}
	}
	if err := c.Optimizer.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkTarget refuses a recorded target of epochs that no run writing a
// checkpoint at s can have: a run stops at its target, so it is past s,
// or at it when s is an epoch's end.
func checkTarget(epochs int, s TrainState) error {
	if epochs < 1 || epochs < s.Epoch || (epochs == s.Epoch && s.Step > 0) {
		return fmt.Errorf("a target of %d epochs is impossible at epoch %d step %d", epochs, s.Epoch, s.Step)
	}
	return nil
}

// SaveCheckpoint writes c to path atomically (fileio.WriteFile).
func SaveCheckpoint(path string, c *Checkpoint) error {
	return saveCheckpoint(fileio.Writer{}, path, c)
}

// saveCheckpoint is SaveCheckpoint through w, so tests can make a step of
// the write fail.
func saveCheckpoint(w fileio.Writer, path string, c *Checkpoint) error {
	if err := w.WriteFile(path, func(out io.Writer) error { return EncodeCheckpoint(out, c) }); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint file once, through fileio.ReadFile: it
// must be a regular file of at most maxCheckpointSize bytes. Errors are one
// line naming the file.
func LoadCheckpoint(ctx context.Context, path string) (*Checkpoint, error) {
	b, err := fileio.ReadFile(ctx, path, maxCheckpointSize)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	c, err := DecodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	return c, nil
}

// Checkpoint files in a folder are named by position, with fixed widths
// so that the names sort as the positions do: epochs finished, then steps
// done of the next epoch (0 at an epoch's end). Only names that match
// checkpointName exactly are ours: listing and pruning never touch other
// files, temporary files of an interrupted save (".checkpoint-....tmp-X")
// included. The folder's name is used as it is, never as a pattern.
const checkpointFormat = "checkpoint-e%06d-s%07d.safetensors"

// checkpointName matches the names checkpointFormat makes; the numbers may
// outgrow their widths, so they are compared as numbers, not as text.
var checkpointName = regexp.MustCompile(`^checkpoint-e([0-9]{6,})-s([0-9]{7,})\.safetensors$`)

// checkpointLockName is the lock file a run holds in its checkpoint folder
// (see LockCheckpointDir).
const checkpointLockName = ".checkpoint.lock"

// CheckpointPath is the file name for a checkpoint at s in dir.
func CheckpointPath(dir string, s TrainState) string {
	return filepath.Join(dir, fmt.Sprintf(checkpointFormat, s.Epoch, s.Step))
}

// ListCheckpoints returns the checkpoint files in dir, oldest first: the
// entries whose names CheckpointPath makes, whatever their type (a FIFO of
// such a name is listed, and refused when read).
func ListCheckpoints(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err) // names dir
	}
	type entry struct {
		name        string
		epoch, step uint64
	}
	var found []entry
	for _, e := range ents {
		m := checkpointName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		epoch, err1 := strconv.ParseUint(m[1], 10, 64)
		step, err2 := strconv.ParseUint(m[2], 10, 64)
		if err1 != nil || err2 != nil || fmt.Sprintf(checkpointFormat, epoch, step) != e.Name() {
			continue // not a name CheckpointPath makes (extra zeros, say)
		}
		found = append(found, entry{e.Name(), epoch, step})
	}
	slices.SortFunc(found, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.step, b.step), cmp.Compare(a.name, b.name))
	})
	files := make([]string, len(found))
	for i, e := range found {
		files[i] = filepath.Join(dir, e.name)
	}
	return files, nil
}

// LatestCheckpoint returns the newest checkpoint file in dir, or an error
// wrapping fs.ErrNotExist when there is none.
func LatestCheckpoint(dir string) (string, error) {
	files, err := ListCheckpoints(dir)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no checkpoint (checkpoint-e*-s*.safetensors) in %s: %w", dir, fs.ErrNotExist)
	}
	return files[len(files)-1], nil
}

// PruneCheckpoints removes all but the newest keep checkpoint files in dir,
// by their exact names. It is called only after a new checkpoint has been
// written and synced, so a crash at any moment leaves at least one complete
// checkpoint. An entry of a checkpoint's name that is not a regular file
// is not ours to remove: it is an error.
func PruneCheckpoints(dir string, keep int) error {
	files, err := ListCheckpoints(dir)
	if err != nil {
		return err
	}
	for _, f := range files[:max(0, len(files)-keep)] {
		info, err := os.Lstat(f)
		if err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("remove old checkpoint: %s is not a regular file; it was not written by this program", f)
		}
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
	}
	return nil
}

// LockCheckpointDir takes the lock of the checkpoint folder dir (the file
// .checkpoint.lock in it, which stays), so that a second run on the same
// folder is refused instead of mixing its checkpoints with this run's and
// pruning them. The lock goes with the process, however it ends.
func LockCheckpointDir(dir string) (*fileio.Lock, error) {
	l, err := fileio.LockFile(filepath.Join(dir, checkpointLockName))
	if err != nil {
		return nil, fmt.Errorf("checkpoint folder: %w", err)
	}
	return l, nil
}
