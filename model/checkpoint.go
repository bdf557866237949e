package model

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"mnist/data/fileio"
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
// the hyperparameters a resumed run must share, and a SHA-256 checksum of
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
	// Config holds the hyperparameters the run used; Epochs is not saved
	// (a resumed run may train to a different total).
	Config    Config
	Params    *Params
	Optimizer *OptimizerState
	Train     TrainState
}

// Checkpoint metadata keys and tensor names besides the parameters'.
const (
	orderName        = "shuffle.order"
	checksumKey      = "checksum"
	optimizerKey     = "optimizer"
	optimizerStepKey = "optimizer_step"
	// settingPrefix + a Setting's name holds its value: "optimizer.lr".
	settingPrefix = "optimizer."
)

// rawTensor is one tensor of a parsed file: its header entry and bytes.
type rawTensor struct {
	entry safetensorsEntry
	data  []byte
}

// checkpointItem is one tensor as EncodeCheckpoint writes it.
type checkpointItem struct {
	name, dtype string
	shape       []int
	data        []byte
}

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
	var items []checkpointItem
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
			items = append(items, checkpointItem{names[i], "F32", shapes[i], b})
		case []float64:
			items = append(items, checkpointItem{names[i], "F64", shapes[i], f64Bytes(d)})
		default:
			return fmt.Errorf("encode checkpoint: %s has unsupported dtype %v", names[i], t.Dtype())
		}
	}
	for k, slot := range slots {
		for i := range names {
			items = append(items, checkpointItem{c.Optimizer.TensorName(slot, i), "F64", shapes[i], f64Bytes(c.Optimizer.Slots[k][i])})
		}
	}
	order := make([]byte, 0, 8*len(c.Train.Order))
	for _, x := range c.Train.Order {
		order = binary.LittleEndian.AppendUint64(order, uint64(x))
	}
	items = append(items, checkpointItem{orderName, "I64", []int{len(c.Train.Order)}, order})

	meta := checkpointMetadata(c)
	var body []byte
	entries := map[string]any{}
	for _, it := range items {
		begin := uint64(len(body))
		body = append(body, it.data...)
		entries[it.name] = safetensorsEntry{Dtype: it.dtype, Shape: it.shape, DataOffsets: []uint64{begin, uint64(len(body))}}
	}
	meta[checksumKey] = checkpointChecksum(meta, body)
	entries[metadataKey] = meta
	js, err := json.Marshal(entries)
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
	return meta
}

// checkpointChecksum is the hex SHA-256 of the metadata (every key but the
// checksum, sorted, one "key=value" line each) followed by the tensor data.
// A flipped bit anywhere but in the JSON's layout is caught by it; damage
// to the layout fails the parse.
func checkpointChecksum(meta map[string]string, body []byte) string {
	h := sha256.New()
	keys := slices.Sorted(maps.Keys(meta))
	for _, k := range keys {
		if k != checksumKey {
			fmt.Fprintf(h, "%s=%s\n", k, meta[k])
		}
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
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
// line naming the problem (the field or tensor, where there is one); it
// never panics on bad input. Values no run can produce (a negative second
// moment, a step count or batch size out of range) are refused here, not
// left to fail later as a diverged run.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	_, meta, data, err := splitSafetensors(b)
	if err != nil {
		return nil, err
	}
	if meta["format"] != CheckpointFormat {
		return nil, fmt.Errorf("format is %q, want %q (not a checkpoint of this program's version?)", meta["format"], CheckpointFormat)
	}
	if got, want := meta[checksumKey], checkpointChecksum(meta, data); got != want {
		return nil, fmt.Errorf("checksum mismatch: the file is damaged or truncated")
	}
	ts, _, err := parseTensorFile(b)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Config: DefaultConfig()}
	r := &metaReader{meta: meta}
	c.Train.Epoch, c.Train.Step = r.int("epoch"), r.int("step")
	c.Train.LossSum, c.Train.Correct, c.Train.Seen = r.float("loss_sum"), r.int("correct"), r.int("seen")
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
	if err := opt.set(settings); err != nil {
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
		for k, slot := range slots {
			b, err := take(ts, c.Optimizer.TensorName(slot, i), "F64", shapes[i], 8)
			if err != nil {
				return nil, err
			}
			c.Optimizer.Slots[k][i] = readF64s(b)
		}
	}
	if name, at, v := c.Params.firstNonFiniteParam(); name != "" {
		return nil, fmt.Errorf("tensor %q[%d] is %v", name, at, v)
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
	if c.Config.BatchSize > len(c.Train.Order) {
		return nil, fmt.Errorf("metadata \"batch_size\": %d is larger than the %d training images of %q", c.Config.BatchSize, len(c.Train.Order), orderName)
	}
	if err := c.Train.check(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := c.Optimizer.Check(); err != nil {
		return nil, err
	}
	return c, nil
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
