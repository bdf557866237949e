package model

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mnist/model/tensorfile"
)

// checkpointOf gathers what a checkpoint holds from a trainer and its
// engine, as the train command does.
func checkpointOf(t *testing.T, cfg Config, tr *Trainer, e Engine) *Checkpoint {
	t.Helper()
	ts, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.State()
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{Config: cfg, Params: st.Params, Optimizer: st.Optimizer, Train: ts}
}

func encodeCheckpoint(t *testing.T, c *Checkpoint) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeCheckpoint(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func paramBytes(t *testing.T, e Engine) []byte {
	t.Helper()
	st, err := e.State()
	if err != nil {
		t.Fatal(err)
	}
	return encodeTest(t, st.Params, nil)
}

// TestResumeIsBitIdentical: a run stopped (after epoch 2, or in the middle
// of epoch 3), checkpointed through the file format and resumed by a fresh
// trainer and engine ends with the same parameters, the same last-epoch
// statistics and the same test metrics, to the bit, as a run never stopped.
// It holds for every optimizer: the checkpoint carries each one's own state.
func TestResumeIsBitIdentical(t *testing.T) {
	for _, name := range OptimizerNames() {
		t.Run(name, func(t *testing.T) { testResumeIsBitIdentical(t, name) })
	}
}

func testResumeIsBitIdentical(t *testing.T, optimizer string) {
	cfg := shortConfig()
	cfg.Epochs = 3
	cfg.Optimizer.Name = optimizer
	if optimizer == sgdName {
		cfg.Optimizer.LearningRate = 0.01
	}
	trainSet, testSet := syntheticSet(1000, 1), syntheticSet(300, 2) // 32 steps an epoch, the last partial

	want, wantB := newTestTrainer(t, cfg, trainSet)
	wantHist, err := want.Fit(context.Background(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	wantMetrics, err := Evaluate(context.Background(), wantB, testSet, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		stopEpoch  int // cancel after this step of this epoch
		stopStep   int
		wantResume int // epochs the resumed Fit reports
	}{
		{name: "after epoch 2", stopEpoch: 2, stopStep: 32, wantResume: 1},
		{name: "mid-epoch 3", stopEpoch: 3, stopStep: 11, wantResume: 1},
		{name: "mid-epoch 1", stopEpoch: 1, stopStep: 1, wantResume: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, firstB := newTestTrainer(t, cfg, trainSet)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := first.Fit(ctx, Hooks{Step: func(s StepStats) {
				if s.Epoch == tt.stopEpoch && s.Step == tt.stopStep {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first Fit = %v, want context.Canceled", err)
			}
			ck, err := DecodeCheckpoint(encodeCheckpoint(t, checkpointOf(t, cfg, first, firstB)))
			if err != nil {
				t.Fatal(err)
			}

			second, secondB := newTestTrainer(t, cfg, trainSet)
			if err := secondB.SetState(State{Params: ck.Params, Optimizer: ck.Optimizer}); err != nil {
				t.Fatal(err)
			}
			if err := second.Restore(ck.Train); err != nil {
				t.Fatal(err)
			}
			hist, err := second.Fit(context.Background(), Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != tt.wantResume {
				t.Fatalf("resumed Fit ran %d epochs, want %d", len(hist), tt.wantResume)
			}
			last, wantLast := hist[len(hist)-1], wantHist[len(wantHist)-1]
			if last.Epoch != 3 || last.Loss != wantLast.Loss || last.Accuracy != wantLast.Accuracy {
				t.Errorf("last epoch %+v, want %+v (seconds aside)", last, wantLast)
			}
			if !bytes.Equal(paramBytes(t, secondB), paramBytes(t, wantB)) {
				t.Error("resumed parameters differ from the uninterrupted run's")
			}
			m, err := Evaluate(context.Background(), secondB, testSet, cfg.BatchSize)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, wantMetrics) {
				t.Errorf("resumed test metrics %v/%v, want %v/%v", m.Accuracy, m.Loss, wantMetrics.Accuracy, wantMetrics.Loss)
			}
		})
	}
}

// TestCheckpointRoundTrip: every field comes back from the file as it was.
func TestCheckpointRoundTrip(t *testing.T) {
	cfg := shortConfig()
	tr, b := newTestTrainer(t, cfg, syntheticSet(200, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Fit(ctx, Hooks{Step: func(s StepStats) {
		if s.Epoch == 2 && s.Step == 3 {
			cancel()
		}
	}})
	want := checkpointOf(t, cfg, tr, b)
	want.InitialWeights = "runs/base model.safetensors"
	got, err := DecodeCheckpoint(encodeCheckpoint(t, want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, want.Config) || !reflect.DeepEqual(got.Optimizer, want.Optimizer) || !reflect.DeepEqual(got.Train, want.Train) ||
		got.InitialWeights != want.InitialWeights {
		t.Errorf("round trip changed the checkpoint:\ngot  %+v %+v\nwant %+v %+v", got.Config, got.Train, want.Config, want.Train)
	}
	if got.Train.Epoch != 1 || got.Train.Step != 3 || got.Optimizer.Step != 7+3 {
		t.Errorf("position epoch %d step %d, Adam step %d; want 1, 3, 10", got.Train.Epoch, got.Train.Step, got.Optimizer.Step)
	}
	assertSameParams(t, got.Params, want.Params)
}

// TestDecodeCheckpointRejectsBadFiles: broken or foreign files get an
// error naming the problem, never a panic.
func TestDecodeCheckpointRejectsBadFiles(t *testing.T) {
	cfg := shortConfig()
	tr, b := newTestTrainer(t, cfg, syntheticSet(100, 1))
	if _, err := tr.Fit(context.Background(), Hooks{}); err != nil {
		t.Fatal(err)
	}
	good := checkpointOf(t, cfg, tr, b)
	file := encodeCheckpoint(t, good)
	edited := func(edit func(c *Checkpoint)) []byte {
		c := *good
		c.Train.Order = append([]int(nil), good.Train.Order...)
		edit(&c)
		return encodeCheckpoint(t, &c)
	}
	// Same length, so the header length still fits: '!' is not base64.
	badShuffle := bytes.Clone(file)
	at := bytes.Index(badShuffle, []byte(`"shuffle":"`)) + len(`"shuffle":"`)
	badShuffle[at] = '!'
	flipped := bytes.Clone(file)
	flipped[len(flipped)-1000] ^= 1 // a bit of the shuffle order
	vAt := tensorOffset(t, file, "adam.v.dense2.weight")
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"truncated body", file[:len(file)-5], "truncated"},
		{"truncated header", file[:100], "goes beyond the end"},
		{"a model file", encodeTest(t, good.Params, map[string]string{"epochs": "2"}), "not a checkpoint"},
		{"one bit flipped", flipped, "checksum mismatch"},
		{"edited metadata", badShuffle, "checksum mismatch"},
		{"order not a permutation", edited(func(c *Checkpoint) { c.Train.Order[0] = len(c.Train.Order) }), "shuffle.order"},
		{"bad batch size", edited(func(c *Checkpoint) { c.Config.BatchSize = 0 }), "batch size"},
		{"batch larger than the set", edited(func(c *Checkpoint) { c.Config.BatchSize = 101 }), `"batch_size": 101 is larger than the 100 training images`},
		{"bad shuffle", reseal(t, badShuffle, nil), `"shuffle"`},
		{"negative second moment", reseal(t, file, func(body []byte) { binary.LittleEndian.PutUint64(body[vAt:], math.Float64bits(-1)) }), "adam.v.dense2.weight[0] is -1: a second moment is never negative"},
		{"absurd step count", resealMeta(t, file, "optimizer_step", "99999999999999"), "optimizer step count 99999999999999 is outside"},
		{"negative epoch", resealMeta(t, file, "epoch", "-1"), "epoch -1 step 0 is negative"},
		{"unknown optimizer", resealMeta(t, file, "optimizer", "rmsprop"), `unknown optimizer "rmsprop"`},
		{"NaN learning rate", resealMeta(t, file, "optimizer.lr", "NaN"), "learning rate must be a positive number"},
		{"beta1 out of range", resealMeta(t, file, "optimizer.beta1", "1.5"), "beta1 must be in [0, 1)"},
		{"older format", resealMeta(t, file, "format", "mnist-checkpoint/1"), "not a checkpoint of this program's version"},
		{"target below the epochs done", resealMeta(t, file, "target_epochs", "1"), `"target_epochs": a target of 1 epochs is impossible at epoch 2 step 0`},
		{"target of no epochs", resealMeta(t, file, "target_epochs", "0"), `"target_epochs": a target of 0 epochs is impossible`},
		{"target not a number", resealMeta(t, file, "target_epochs", "five"), `metadata "target_epochs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCheckpoint(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("DecodeCheckpoint = %v, want one line containing %q", err, tt.want)
			}
		})
	}
	// A generator state that decodes but is not a PCG's is refused by
	// Restore, which leaves the trainer as it was.
	bad := good.Train
	bad.Shuffle = []byte("nonsense")
	if err := tr.Restore(bad); err == nil {
		t.Error("Restore accepted a bad shuffle state")
	}
}

// TestCheckpointTargetEpochs: the run's target of epochs is recorded
// when known and read back; a file without it (or written with none) reads
// back with 0, which tells a resumed run that it is not known.
func TestCheckpointTargetEpochs(t *testing.T) {
	c := smallCheckpoint(t)
	c.Config.Epochs = 3
	file := encodeCheckpoint(t, c)
	unknown := *c
	unknown.Config.Epochs = 0
	tests := []struct {
		name string
		file []byte
		want int
	}{
		{"recorded", file, 3},
		{"written with none", encodeCheckpoint(t, &unknown), 0},
		{"a file without the key", resealWith(t, file, nil, func(meta map[string]string) { delete(meta, "target_epochs") }), 0},
		{"at the target's end", resealMeta(t, file, "target_epochs", "1"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCheckpoint(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config.Epochs != tt.want {
				t.Errorf("target %d epochs, want %d", got.Config.Epochs, tt.want)
			}
			if _, meta := fileHeader(t, tt.file); (meta["target_epochs"] != "") != (tt.want > 0) {
				t.Errorf("metadata target_epochs %q for a target of %d", meta["target_epochs"], tt.want)
			}
		})
	}
}

// TestPruneCheckpointsKeepsLastTwo: the newest two by position stay,
// whatever order the files were written in; other files are not touched.
func TestPruneCheckpointsKeepsLastTwo(t *testing.T) {
	tests := []struct {
		name string
		have []TrainState
		want []string
	}{
		{"none", nil, nil},
		{"one", []TrainState{{Epoch: 1}}, []string{"checkpoint-e000001-s0000000.safetensors"}},
		{"three epochs", []TrainState{{Epoch: 1}, {Epoch: 2}, {Epoch: 3}},
			[]string{"checkpoint-e000002-s0000000.safetensors", "checkpoint-e000003-s0000000.safetensors"}},
		{"mid-epoch newest", []TrainState{{Epoch: 10}, {Epoch: 9}, {Epoch: 10, Step: 12}},
			[]string{"checkpoint-e000010-s0000000.safetensors", "checkpoint-e000010-s0000012.safetensors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.have {
				if err := os.WriteFile(CheckpointPath(dir, s), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := PruneCheckpoints(dir, 2); err != nil {
				t.Fatal(err)
			}
			assertDirHolds(t, dir, append(tt.want, "notes.txt")...)
			latest, err := LatestCheckpoint(dir)
			switch {
			case len(tt.want) == 0 && err == nil:
				t.Errorf("LatestCheckpoint of an empty folder = %s, want an error", latest)
			case len(tt.want) > 0 && filepath.Base(latest) != tt.want[len(tt.want)-1]:
				t.Errorf("LatestCheckpoint = %s (%v), want %s", latest, err, tt.want[len(tt.want)-1])
			}
		})
	}
}

// reseal applies edit to a checkpoint's tensor data and writes a valid
// checksum again, so that the decoder's own checks are what is tested.
func reseal(t *testing.T, file []byte, edit func(body []byte)) []byte {
	t.Helper()
	return resealWith(t, file, edit, nil)
}

// resealMeta sets one metadata value and writes a valid checksum again.
func resealMeta(t *testing.T, file []byte, key, value string) []byte {
	t.Helper()
	return resealWith(t, file, nil, func(meta map[string]string) { meta[key] = value })
}

func resealWith(t testing.TB, file []byte, editBody func([]byte), editMeta func(map[string]string)) []byte {
	t.Helper()
	header, meta := fileHeader(t, file)
	body := bytes.Clone(file[8+binary.LittleEndian.Uint64(file):])
	if editBody != nil {
		editBody(body)
	}
	if editMeta != nil {
		editMeta(meta)
	}
	meta[tensorfile.ChecksumKey] = tensorfile.Checksum(meta, body)
	raw, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	header[tensorfile.MetadataKey] = raw
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(append(out, js...), body...)
}

// fileHeader is a safetensors file's JSON header, its entries raw, and its
// metadata.
func fileHeader(t testing.TB, file []byte) (map[string]json.RawMessage, map[string]string) {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	if err := json.Unmarshal(header[tensorfile.MetadataKey], &meta); err != nil {
		t.Fatal(err)
	}
	return header, meta
}

// tensorOffset is where tensor name's bytes start in the data section.
func tensorOffset(t testing.TB, file []byte, name string) int {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	var e tensorfile.Entry
	if err := json.Unmarshal(header[name], &e); err != nil {
		t.Fatal(err)
	}
	return int(e.DataOffsets[0])
}
