package model

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gorgonia.org/tensor"
)

// A checkpoint is a safetensors file too, so that the usual tools can look
// inside one, but it is not a model file (-load rejects it, having more
// tensors): besides the six parameters, in the training dtype (F32; F64
// for float64 test configs), it holds
//
//	adam.m.<param>, adam.v.<param>  F64, the parameter's stored shape
//	shuffle.order                   I64 [training images]
//
// and in __metadata__ the format, epoch, step and running totals of a
// partial epoch, Adam's step count, the shuffle generator's state (base64
// of rand.PCG's binary form) and the hyperparameters a resumed run must
// share. Floats are written with the fewest digits that read back exactly.
//
// Moments are F64 because the CPU backend keeps them in float64: anything
// narrower would make a resumed run drift from an uninterrupted one.

// CheckpointFormat is the "format" metadata value of checkpoint files.
const CheckpointFormat = "mnist-checkpoint/1"

// ErrCheckpointNotModel is DecodeSafetensors' answer to a checkpoint: it is
// a safetensors file too, but holds the optimiser's state besides the
// weights and is read with LoadCheckpoint.
var ErrCheckpointNotModel = errors.New("this is a training checkpoint, not a model file")

// maxCheckpointSize caps a file before it is read: the header, the
// parameters and both moments in float64, and an order of up to 2^20
// images (MNIST has 60,000) are far below it.
const maxCheckpointSize = 64 << 20

// Checkpoint is everything needed to carry on training exactly.
type Checkpoint struct {
	// Config holds the hyperparameters the run used; Epochs is not saved
	// (a resumed run may train to a different total).
	Config    Config
	Params    *Params
	Optimizer OptimizerState
	Train     TrainState
}

// Checkpoint tensor names besides ParamNames.
const (
	momentMPrefix = "adam.m."
	momentVPrefix = "adam.v."
	orderName     = "shuffle.order"
)

// rawTensor is one tensor of a parsed file: its header entry and bytes.
type rawTensor struct {
	entry safetensorsEntry
	data  []byte
}

// EncodeCheckpoint writes c as a safetensors file.
func EncodeCheckpoint(w io.Writer, c *Checkpoint) error {
	if c.Params == nil {
		return errors.New("encode checkpoint: no parameters")
	}
	if err := c.Optimizer.Check(); err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	names, shapes := ParamNames(), fileShapes()
	type item struct {
		name, dtype string
		shape       []int
		data        []byte
	}
	var items []item
	for i, t := range c.Params.Tensors {
		if t == nil || t.Shape().TotalSize() != paramShapes()[i].TotalSize() {
			return fmt.Errorf("encode checkpoint: %s is missing or has the wrong size", names[i])
		}
		switch d := t.Data().(type) {
		case []float32:
			b := make([]byte, 0, 4*len(d))
			for _, x := range d {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
			items = append(items, item{names[i], "F32", shapes[i], b})
		case []float64:
			items = append(items, item{names[i], "F64", shapes[i], f64Bytes(d)})
		default:
			return fmt.Errorf("encode checkpoint: %s has unsupported dtype %v", names[i], t.Dtype())
		}
	}
	for i := range names {
		items = append(items,
			item{momentMPrefix + names[i], "F64", shapes[i], f64Bytes(c.Optimizer.M[i])},
			item{momentVPrefix + names[i], "F64", shapes[i], f64Bytes(c.Optimizer.V[i])})
	}
	order := make([]byte, 0, 8*len(c.Train.Order))
	for _, x := range c.Train.Order {
		order = binary.LittleEndian.AppendUint64(order, uint64(x))
	}
	items = append(items, item{orderName, "I64", []int{len(c.Train.Order)}, order})

	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	cfg := c.Config
	header := map[string]any{metadataKey: map[string]string{
		"format":       CheckpointFormat,
		"architecture": Architecture,
		"epoch":        strconv.Itoa(c.Train.Epoch),
		"step":         strconv.Itoa(c.Train.Step),
		"loss_sum":     f(c.Train.LossSum),
		"correct":      strconv.Itoa(c.Train.Correct),
		"seen":         strconv.Itoa(c.Train.Seen),
		"shuffle":      base64.StdEncoding.EncodeToString(c.Train.Shuffle),
		"adam_step":    strconv.FormatInt(c.Optimizer.Step, 10),
		"seed":         strconv.FormatUint(cfg.Seed, 10),
		"batch_size":   strconv.Itoa(cfg.BatchSize),
		"lr":           f(cfg.LearningRate),
		"beta1":        f(cfg.Beta1),
		"beta2":        f(cfg.Beta2),
		"epsilon":      f(cfg.Epsilon),
		"dtype":        cfg.Dtype.String(),
	}}
	var body []byte
	for _, it := range items {
		begin := uint64(len(body))
		body = append(body, it.data...)
		header[it.name] = safetensorsEntry{Dtype: it.dtype, Shape: it.shape, DataOffsets: []uint64{begin, uint64(len(body))}}
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("encode checkpoint header: %w", err)
	}
	if r := (8 + len(js)) % 8; r != 0 { // 8-byte aligned data, as in EncodeSafetensors
		js = append(js, bytes.Repeat([]byte{' '}, 8-r)...)
	}
	out := make([]byte, 0, 8+len(js)+len(body))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(js)))
	out = append(out, js...)
	out = append(out, body...)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func f64Bytes(xs []float64) []byte {
	b := make([]byte, 0, 8*len(xs))
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// parseTensorFile splits a safetensors file into its tensors and metadata,
// checking only the layout: offsets inside the data, tiling it exactly.
func parseTensorFile(b []byte) (map[string]rawTensor, map[string]string, error) {
	raw, meta, data, err := splitSafetensors(b)
	if err != nil {
		return nil, nil, err
	}
	type span struct {
		name       string
		begin, end uint64
	}
	var spans []span
	out := make(map[string]rawTensor, len(raw))
	for name, m := range raw {
		var e safetensorsEntry
		if err := json.Unmarshal(m, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[1] < e.DataOffsets[0] {
			return nil, nil, fmt.Errorf("tensor %q has bad data_offsets %v", name, e.DataOffsets)
		}
		spans = append(spans, span{name, e.DataOffsets[0], e.DataOffsets[1]})
		out[name] = rawTensor{entry: e}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.begin, b.begin), strings.Compare(a.name, b.name)) })
	var pos uint64
	for _, s := range spans {
		if s.begin != pos {
			return nil, nil, fmt.Errorf("tensor %q starts at %d, want %d (tensors must tile the data)", s.name, s.begin, pos)
		}
		pos = s.end
	}
	if pos != uint64(len(data)) {
		return nil, nil, fmt.Errorf("the tensors cover %d bytes of data, the file has %d (truncated?)", pos, len(data))
	}
	for _, s := range spans {
		r := out[s.name]
		r.data = data[s.begin:s.end]
		out[s.name] = r
	}
	return out, meta, nil
}

// take returns tensor name with the given dtype and shape, checking that
// its byte size matches.
func take(ts map[string]rawTensor, name, dtype string, shape []int, elem int) ([]byte, error) {
	r, ok := ts[name]
	if !ok {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	if r.entry.Dtype != dtype {
		return nil, fmt.Errorf("tensor %q has dtype %q, want %q", name, r.entry.Dtype, dtype)
	}
	if !slices.Equal(r.entry.Shape, shape) {
		return nil, fmt.Errorf("tensor %q has shape %v, want %v", name, r.entry.Shape, shape)
	}
	n := elem
	for _, d := range shape {
		n *= d
	}
	if len(r.data) != n {
		return nil, fmt.Errorf("tensor %q has %d bytes, want %d", name, len(r.data), n)
	}
	return r.data, nil
}

func readF64s(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
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
// line naming the problem; it never panics on bad input.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	ts, meta, err := parseTensorFile(b)
	if err != nil {
		return nil, err
	}
	if meta["format"] != CheckpointFormat {
		return nil, fmt.Errorf("format is %q, want %q (not a checkpoint?)", meta["format"], CheckpointFormat)
	}
	c := &Checkpoint{Config: DefaultConfig()}
	r := &metaReader{meta: meta}
	c.Train.Epoch, c.Train.Step = r.int("epoch"), r.int("step")
	c.Train.LossSum, c.Train.Correct, c.Train.Seen = r.float("loss_sum"), r.int("correct"), r.int("seen")
	c.Config.BatchSize, c.Config.LearningRate = r.int("batch_size"), r.float("lr")
	c.Config.Beta1, c.Config.Beta2, c.Config.Epsilon = r.float("beta1"), r.float("beta2"), r.float("epsilon")
	if c.Config.Seed, err = strconv.ParseUint(meta["seed"], 10, 64); err != nil {
		r.fail("seed", err)
	}
	if c.Optimizer.Step, err = strconv.ParseInt(meta["adam_step"], 10, 64); err != nil {
		r.fail("adam_step", err)
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
	if r.err != nil {
		return nil, r.err
	}
	if err := c.Config.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}

	wantTensors := 6*3 + 1
	if len(ts) != wantTensors {
		return nil, fmt.Errorf("%d tensors, want %d (parameters, Adam's moments, shuffle order)", len(ts), wantTensors)
	}
	names, shapes := ParamNames(), fileShapes()
	c.Params = &Params{}
	for i, name := range names {
		pt, err := newZeroTensor(c.Config.Dtype, paramShapes()[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch d := pt.Data().(type) {
		case []float32:
			b, err := take(ts, name, "F32", shapes[i], 4)
			if err != nil {
				return nil, err
			}
			for j := range d {
				d[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
			}
		case []float64:
			b, err := take(ts, name, "F64", shapes[i], 8)
			if err != nil {
				return nil, err
			}
			copy(d, readF64s(b))
		}
		c.Params.Tensors[i] = pt
		m, err := take(ts, momentMPrefix+name, "F64", shapes[i], 8)
		if err != nil {
			return nil, err
		}
		v, err := take(ts, momentVPrefix+name, "F64", shapes[i], 8)
		if err != nil {
			return nil, err
		}
		c.Optimizer.M[i], c.Optimizer.V[i] = readF64s(m), readF64s(v)
	}
	r0, ok := ts[orderName]
	if !ok || len(r0.entry.Shape) != 1 {
		return nil, fmt.Errorf("tensor %q is missing or not one-dimensional", orderName)
	}
	ob, err := take(ts, orderName, "I64", r0.entry.Shape, 8)
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
	if err := c.Optimizer.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// SaveCheckpoint writes c to path atomically (see writeFileAtomic).
func SaveCheckpoint(path string, c *Checkpoint) error {
	if err := writeFileAtomic(path, func(w io.Writer) error { return EncodeCheckpoint(w, c) }); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint file. Errors name the file.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCheckpointSize+1))
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	if len(b) > maxCheckpointSize {
		return nil, fmt.Errorf("load checkpoint %s: larger than any checkpoint (%d bytes at most)", path, maxCheckpointSize)
	}
	c, err := DecodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	return c, nil
}

// Checkpoint files in a folder are named by position, with fixed widths
// so that the names sort as the positions do: epochs finished, then steps
// done of the next epoch (0 at an epoch's end).
const checkpointPattern = "checkpoint-*.safetensors"

// CheckpointPath is the file name for a checkpoint at s in dir.
func CheckpointPath(dir string, s TrainState) string {
	return filepath.Join(dir, fmt.Sprintf("checkpoint-e%06d-s%07d.safetensors", s.Epoch, s.Step))
}

// ListCheckpoints returns the checkpoint files in dir, oldest first.
func ListCheckpoints(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, checkpointPattern))
	if err != nil {
		return nil, fmt.Errorf("list checkpoints in %s: %w", dir, err)
	}
	slices.Sort(files) // Glob sorts too, but the order is what matters here
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
		return "", fmt.Errorf("no checkpoint (%s) in %s: %w", checkpointPattern, dir, fs.ErrNotExist)
	}
	return files[len(files)-1], nil
}

// PruneCheckpoints removes all but the newest keep checkpoint files in dir.
// It is called only after a new checkpoint has been written and synced, so
// a crash at any moment leaves at least one complete checkpoint.
func PruneCheckpoints(dir string, keep int) error {
	files, err := ListCheckpoints(dir)
	if err != nil {
		return err
	}
	for _, f := range files[:max(0, len(files)-keep)] {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
	}
	return nil
}
