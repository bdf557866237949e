package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"mnist/data"
	"mnist/gpu"
	"mnist/model"
)

// usage is the synopsis -h prints above the flags. It names only the
// engines this build has: the CPU build's one, or the cuda build's five.
func usage() string {
	var engines []string
	for _, name := range gpu.EngineNames() {
		if gpu.CheckEngine(name) == nil {
			engines = append(engines, name)
		}
	}
	return "usage: train [-epochs N] [-batch-size N] [-optimizer adam|sgd] [-lr X] [-seed N] [-engine " + strings.Join(engines, "|") + "] [-data-dir DIR] [-gpu N] [-log-level LEVEL] [-log-format text|json] [-save FILE] [-load FILE] [-checkpoint-dir DIR [-resume]] [-metrics-out FILE] [-plot FILE]\n" +
		"       train -load FILE -predict IMAGE...  (classify PNG or JPEG images)\n" +
		"       train -load FILE -serve ADDR  (draw digits in the browser at http://ADDR/)\n" +
		"       train -download-only [-data-dir DIR]  (fetch and verify MNIST)"
}

// errHelp means -h was asked for and the usage has been printed.
var errHelp = flag.ErrHelp

// usageError is a bad flag value found only after parsing (e.g. a
// -checkpoint-dir that already holds checkpoints): it exits 2 like a
// parse error.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type options struct {
	cfg       model.Config
	dataDir   string
	gpu       int
	engine    string
	logLevel  string
	logFormat string
	// downloadOnly fetches and verifies the data, then exits (make data).
	downloadOnly bool
	// metricsOut and plotOut are the -metrics-out JSON and -plot PNG files.
	metricsOut string
	plotOut    string
	// savePath and loadPath are the -save and -load safetensors files.
	savePath string
	loadPath string
	// initialWeights is the model file the run's weights started from:
	// -load's, or the one a resumed checkpoint records ("": the seed's
	// initialisation). The saved model and checkpoints name it.
	initialWeights string
	// batchSizeSet says -batch-size was given; otherwise -load evaluates
	// with the saved model's batch size, which its saved results depend on.
	batchSizeSet bool
	// predict classifies images (the positional arguments) with the -load
	// model instead of training; predictFiles are those images.
	predict      bool
	predictFiles []string
	// serveAddr serves the -load model's web page and API there (-serve).
	serveAddr string
	// checkpointDir is where a checkpoint is written after every epoch
	// and on interruption; resume carries on from its newest one.
	checkpointDir string
	resume        bool
	// seedSet, lrSet and optimizerSet, like batchSizeSet, say the flag was
	// given: with -resume the checkpoint's values are adopted unless given,
	// and a given value must match them.
	seedSet, lrSet, optimizerSet bool
	// epochsSet says -epochs was given: with -resume the stopped run's
	// target is adopted unless it was (any total may be given).
	epochsSet bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	def := model.DefaultConfig()
	o := options{cfg: def}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	// The flag package would print every parse error with the whole help
	// after it (43 lines for a typo); run prints one line instead, and -h
	// prints the help below.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.IntVar(&o.cfg.Epochs, "epochs", def.Epochs, "passes over the 60,000 training images; 0 only evaluates the -load model (or the -resume checkpoint)")
	fs.IntVar(&o.cfg.BatchSize, "batch-size", def.BatchSize, "images per training step (1..60000); also the evaluation batch")
	fs.StringVar(&o.cfg.Optimizer.Name, "optimizer", def.Optimizer.Name, "optimizer: adam (the spec: β1 0.9, β2 0.999, ε 1e-7) or sgd (momentum 0.9)")
	fs.Float64Var(&o.cfg.Optimizer.LearningRate, "lr", def.Optimizer.LearningRate, "learning rate of the optimizer (> 0)")
	seed := fs.Uint64("seed", def.Seed, "seed for weight initialisation and per-epoch shuffling")
	fs.StringVar(&o.dataDir, "data-dir", "", "folder holding the MNIST .gz files, downloaded there when missing (default: the user cache dir, e.g. ~/.cache/mnist-gorgonia)")
	fs.BoolVar(&o.downloadOnly, "download-only", false, "fetch and verify MNIST into the data folder, then exit")
	fs.IntVar(&o.gpu, "gpu", 0, "CUDA device ordinal (cuda build only; the CPU build trains on the CPU and warns when N is not 0)")
	fs.StringVar(&o.engine, "engine", gpu.EngineGorgonia, "what runs the network: gorgonia (Gorgonia's tape machine, on the CPU or, in the cuda build, the GPU), native (cuda build only: our own CUDA engine), cudagraph (cuda build only: native with each step replayed from a CUDA graph), fused (cuda build only: cudagraph with a step of five fused launches) or persistent (cuda build only: many steps to one launch of a kernel that stays on the GPU)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.metricsOut, "metrics-out", "", "write per-epoch and test metrics, the confusion matrix and the settings to this JSON `file` (atomically)")
	fs.StringVar(&o.plotOut, "plot", "", "draw training loss and accuracy per epoch and the test result into this PNG `file` (800x600)")
	fs.StringVar(&o.savePath, "save", "", "write the trained weights and test results to this safetensors `file` (atomically)")
	fs.StringVar(&o.loadPath, "load", "", "start from the weights in this safetensors `file` (from -save); with -epochs 0 only evaluate them")
	fs.StringVar(&o.checkpointDir, "checkpoint-dir", "", "after every epoch, and on Ctrl-C, save weights, the optimizer's state and the shuffle position to this `folder` (created if missing), keeping the newest 2")
	fs.BoolVar(&o.resume, "resume", false, "carry on from the newest checkpoint in -checkpoint-dir, as if never stopped, to the stopped run's total of epochs (or -epochs, if given)")
	fs.BoolVar(&o.predict, "predict", false, "classify the PNG or JPEG images named after the flags with the -load model, print each one's digit and top-3 probabilities, and exit (no training, no MNIST needed)")
	fs.StringVar(&o.serveAddr, "serve", "", "serve a page to draw digits on, and a JSON API, with the -load model at this `address` (host:port, e.g. 127.0.0.1:8080) until Ctrl-C; see docs/serve.md")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "train trains the MNIST MLP (784-128-64-10) with Gorgonia and reports test accuracy and loss.")
			fmt.Fprintln(stderr, usage())
			fmt.Fprintln(stderr, "\nFlags:")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			fmt.Fprintln(stderr, "\nExit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted.")
			return o, errHelp
		}
		return o, flagError(fs, err)
	}
	// Parsing stops at the first argument that is not a flag, so a flag
	// after the image names arrives as an image name: say so, rather than
	// that the flag (-load, say) is missing. After "--", which ends the
	// flags, a name starting with "-" is a file's.
	rest := fs.Args()
	if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
		rest = nil
	}
	for _, a := range rest {
		if len(a) > 1 && a[0] == '-' {
			return o, fmt.Errorf("flag %s comes after the argument %q: flags must come before the image names (train -load FILE -predict IMAGE...)", a, fs.Arg(0))
		}
	}
	if fs.NArg() > 0 && !o.predict {
		return o, fmt.Errorf("unexpected argument %q (image files are only taken with -predict)", fs.Arg(0))
	}
	o.cfg.Seed = *seed
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.batchSizeSet = set["batch-size"]
	o.seedSet, o.lrSet, o.optimizerSet = set["seed"], set["lr"], set["optimizer"]
	o.epochsSet = set["epochs"]
	if o.resume && o.checkpointDir == "" {
		return o, errors.New("-resume needs -checkpoint-dir DIR, the folder to resume from")
	}
	if o.resume && o.loadPath != "" {
		return o, errors.New("-resume and -load both give the starting weights: use one")
	}
	// -epochs 0 evaluates the starting weights; without -load (or -resume)
	// those are the seed's random ones, whose 10% accuracy means nothing.
	if o.cfg.Epochs == 0 && o.loadPath == "" && !o.resume && !o.downloadOnly {
		return o, errors.New("-epochs 0 only evaluates a model, and none was given: add -load FILE, or train with -epochs 1 or more")
	}
	// The flags that only steer training would be ignored by an
	// evaluation, and the report would then name them as if they had
	// trained the model it scores.
	if o.evaluatesLoaded() {
		if err := refuseFlags(set, "epochs 0", "only evaluates the -load model",
			"lr", "optimizer", "seed", "checkpoint-dir"); err != nil {
			return o, err
		}
	}
	if o.predict {
		if err := checkPredictFlags(o, set, fs.Args()); err != nil {
			return o, err
		}
		o.predictFiles = fs.Args()
	}
	if o.serveAddr != "" {
		if err := checkServeFlags(o, set); err != nil {
			return o, err
		}
	}
	if o.downloadOnly {
		if err := refuseFlags(set, "download-only", "only fetches and verifies the data",
			"epochs", "batch-size", "lr", "optimizer", "seed", "engine", "gpu", "save", "load",
			"metrics-out", "plot", "checkpoint-dir", "resume"); err != nil {
			return o, err
		}
	}
	if err := checkTrainingFlags(o.cfg); err != nil {
		return o, err
	}
	if err := o.cfg.Validate(); err != nil {
		return o, err
	}
	if err := gpu.CheckEngine(o.engine); err != nil {
		return o, err
	}
	if o.gpu < 0 {
		return o, fmt.Errorf("-gpu must be >= 0, got %d", o.gpu)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("unknown log format %q: use text or json", o.logFormat)
	}
	return o, nil
}

// evaluatesLoaded says the run only scores the -load model (-epochs 0),
// rather than training, predicting, serving or downloading.
func (o options) evaluatesLoaded() bool {
	return o.cfg.Epochs == 0 && o.loadPath != "" && !o.predict && o.serveAddr == "" && !o.downloadOnly
}

// checkTrainingFlags checks the numbers a user types, in the flags' own
// names and before any download: a batch larger than the training set
// is known to be wrong without reading it, since the verified files
// always hold data.TrainImages images. cfg.Validate checks the same
// fields again for callers of the model package, in its own words.
func checkTrainingFlags(cfg model.Config) error {
	lr := cfg.Optimizer.LearningRate
	switch {
	case cfg.Epochs < 0:
		return fmt.Errorf("-epochs must be 0 or more, got %d", cfg.Epochs)
	case cfg.BatchSize < 1 || cfg.BatchSize > data.TrainImages:
		return fmt.Errorf("-batch-size must be from 1 to %d (the training set's size), got %d", data.TrainImages, cfg.BatchSize)
	case !(lr > 0) || math.IsInf(lr, 0):
		return fmt.Errorf("-lr must be a positive number, got %v", lr)
	}
	return nil
}

// checkPredictFlags rejects -predict without a model or images, and with
// flags that only mean something when training: silently ignoring them
// would let a user believe a -save or -epochs had done something.
func checkPredictFlags(o options, set map[string]bool, files []string) error {
	if o.loadPath == "" {
		return errors.New("-predict needs a model: give -load FILE")
	}
	if len(files) == 0 {
		return errors.New("-predict needs at least one image file after the flags")
	}
	return refuseFlags(set, "predict", "only classifies images",
		"epochs", "lr", "optimizer", "seed", "save", "metrics-out", "plot", "download-only", "data-dir", "checkpoint-dir", "resume")
}

// refuseFlags rejects each of names that was given alongside -mode, which
// does something else: silently ignoring them would let a user believe a
// -save or -epochs had done something.
func refuseFlags(set map[string]bool, mode, does string, names ...string) error {
	for _, name := range names {
		if set[name] {
			return fmt.Errorf("-%s cannot be used with -%s, which %s", name, mode, does)
		}
	}
	return nil
}

// flagError turns the flag package's parse error into one line: the flag
// package's own words, with the nearest flag name suggested for a name it
// does not know.
func flagError(fs *flag.FlagSet, err error) error {
	const unknown = "flag provided but not defined: -"
	msg := err.Error()
	var value, flagName string
	if n, _ := fmt.Sscanf(msg, "invalid value %q for flag -%s", &value, &flagName); n == 2 {
		flagName = strings.TrimSuffix(flagName, ":")
		if f := fs.Lookup(flagName); f != nil {
			return fmt.Errorf("-%s %s: want %s", flagName, value, flagKind(f))
		}
	}
	name, ok := strings.CutPrefix(msg, unknown)
	if !ok {
		return fmt.Errorf("bad flags: %w", err)
	}
	msg = "unknown flag -" + name
	if near := nearestFlag(fs, name); near != "" {
		msg += " (did you mean -" + near + "?)"
	} else {
		msg += " (train -h lists the flags)"
	}
	return errors.New(msg)
}

// flagKind says what a flag's value must be.
func flagKind(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a valid value"
	}
	switch g.Get().(type) {
	case float64:
		return "a number, e.g. 0.001"
	case int:
		return "a whole number"
	case uint64:
		return "a whole number, 0 or more"
	case bool:
		return "true or false (as -flag=false)"
	}
	return "a valid value"
}

// nearestFlag is the defined flag name closest to name by edit distance,
// if it is close enough to be a typo of it: at most 2 edits, and fewer
// than half the name's length. A name of 3 letters or more that is the
// start of a flag's name (-batch for -batch-size) counts as close too;
// of several such flags, the first in alphabetical order.
func nearestFlag(fs *flag.FlagSet, name string) string {
	name = strings.TrimPrefix(name, "-") // --epochs is -epochs to the flag package too
	best, bestDist := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(name, f.Name)
		if len(name) >= 3 && strings.HasPrefix(f.Name, name) {
			d = min(d, 1)
		}
		if d < bestDist && 2*d < len(name) {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// editDistance is the optimal-string-alignment distance between a and b
// (bytes): the insertions, deletions, substitutions and swaps of two
// neighbours that turn one into the other, the usual typing slips.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
