//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"gorgonia.org/cu"

	"mnist/model"
)

// BuiltWithCUDA reports whether this binary was built with the cuda tag.
const BuiltWithCUDA = true

// ErrNoUsableGPU is wrapped by Open's error when there is no GPU that the
// cuda build can use (no driver, no device, no device with that number, GPU
// or driver too old). The message says what to do instead.
var ErrNoUsableGPU = errors.New("no usable CUDA GPU")

// visibleDevicesEnv is read by the CUDA driver once, when it initialises.
const visibleDevicesEnv = "CUDA_VISIBLE_DEVICES"

// cpuHint ends the ErrNoUsableGPU messages that are about this machine (as
// opposed to a -gpu number that does not exist).
const cpuHint = "use the CPU build instead: make train"

// cudaDevice is an opened CUDA GPU. Gorgonia's tape machine runs the graph's
// CUDA ops on the driver's device 0; Open arranges that device 0 is the GPU
// that -gpu asked for.
type cudaDevice struct {
	ordinal int
	name    string
	engine  string
	log     logrus.FieldLogger
}

func (d *cudaDevice) Name() string {
	return fmt.Sprintf("cuda:%d %s (%s)", d.ordinal, d.name, d.engine)
}
func (d *cudaDevice) CUDA() bool { return true }

// NewEngine compiles the network for the chosen engine. The Gorgonia engine
// needs no machine options: in the cuda build gorgonia.NewTapeMachine itself
// creates a CUDA engine for driver device 0 (which Open made the selected
// GPU) and runs every op that has a CUDA implementation there. The native
// engine also opens driver device 0, for the same reason.
func (d *cudaDevice) NewEngine(cfg model.Config) (model.Engine, error) {
	switch d.engine {
	case EngineNative:
		return newNativeEngine(0, cfg)
	case EngineCUDAGraph, EngineFused:
		return newCapturedEngine(0, cfg, d.engine)
	case EnginePersistent:
		return newPersistentEngine(0, cfg)
	}
	return openGorgonia(cfg, gorgoniaOptions{capture: true, warn: func(err error) {
		d.log.WithError(err).Warn("the gorgonia engine's training step could not be captured as a CUDA graph: it runs Gorgonia's program every step instead, slower but the same")
	}})
}

// Close releases nothing: Open holds no CUDA resources after it returns.
// Each tape machine owns its CUDA context and frees it when it is closed.
func (d *cudaDevice) Close() error { return nil }

// Open initialises CUDA, checks that GPU number ordinal (in the driver's
// order, as nvidia-smi and CUDA_VISIBLE_DEVICES count) is usable by this
// build, logs what it found at Info level and returns it.
//
// Gorgonia v0.9.18's tape machine always places the graph on the driver's
// device 0 (ExternMetadata.init calls cu.GetDevice(i) for i = 0..n-1 and the
// register allocator assigns Device(0)), and it has no option to choose
// another GPU. So for ordinal > 0, Open narrows CUDA_VISIBLE_DEVICES to that
// one GPU before it initialises the driver, which is when the driver reads
// the variable; the chosen GPU then is device 0 for the whole process. This
// is why the adapted gorgonia.org/cu initialises on first use (cu.Init)
// instead of in its package init, so Open must run before anything else
// touches CUDA. A CUDA_VISIBLE_DEVICES list the user already set is
// honoured: ordinal indexes into it.
func Open(ordinal int, engine string, log logrus.FieldLogger) (Device, error) {
	if ordinal < 0 {
		return nil, fmt.Errorf("invalid GPU number %d: must be 0 or more", ordinal)
	}
	if err := CheckEngine(engine); err != nil {
		return nil, err
	}
	if err := selectGPU(ordinal); err != nil {
		return nil, err
	}
	if err := cu.Init(); err != nil {
		if ordinal > 0 && err == cu.NoDevice {
			return nil, fmt.Errorf("%w: GPU %d is not available (cuInit with %s=%q: %s): check -gpu against `nvidia-smi -L`, or %s",
				ErrNoUsableGPU, ordinal, visibleDevicesEnv, os.Getenv(visibleDevicesEnv), cu.ErrorString(err), cpuHint)
		}
		return nil, fmt.Errorf("%w (cuInit: %s): %s", ErrNoUsableGPU, cu.ErrorString(err), cpuHint)
	}
	count, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("%w (counting devices: %s): %s", ErrNoUsableGPU, cu.ErrorString(err), cpuHint)
	}
	if count == 0 {
		return nil, fmt.Errorf("%w (the driver lists no devices): %s", ErrNoUsableGPU, cpuHint)
	}
	info, err := probe(0)
	if err != nil {
		return nil, fmt.Errorf("%w: GPU %d: %v: %s", ErrNoUsableGPU, ordinal, err, cpuHint)
	}
	if err := info.check(); err != nil {
		return nil, fmt.Errorf("%w: GPU %d (%s): %v: %s", ErrNoUsableGPU, ordinal, info.name, err, cpuHint)
	}
	log.WithFields(logrus.Fields{
		"gpu":                ordinal,
		"name":               info.name,
		"compute_capability": fmt.Sprintf("%d.%d", info.ccMajor, info.ccMinor),
		"memory_total_mib":   info.totalMem >> 20,
		"memory_free_mib":    info.freeMem >> 20,
		"driver_cuda":        cudaVersionString(info.driverVersion),
		"built_with_cuda":    cudaVersionString(info.compiledVersion),
		"visible_devices":    visibleDevicesDescription(),
		"engine":             engine,
	}).Info("using CUDA GPU")
	if info.driverVersion < info.compiledVersion {
		log.WithFields(logrus.Fields{
			"driver_cuda":     cudaVersionString(info.driverVersion),
			"built_with_cuda": cudaVersionString(info.compiledVersion),
		}).Warn("the driver is older than the CUDA toolkit this binary was built with; if CUDA calls fail, update the driver or rebuild with an older toolkit")
	}
	return &cudaDevice{ordinal: ordinal, name: info.name, engine: engine, log: log}, nil
}

// selectGPU makes GPU ordinal the driver's device 0 by narrowing
// CUDA_VISIBLE_DEVICES, which only works before the driver is initialised.
func selectGPU(ordinal int) error {
	if ordinal == 0 {
		return nil // device 0 already is the first visible GPU
	}
	// Once the driver is initialised the set of visible devices is fixed.
	if cu.Initialized() {
		return fmt.Errorf("cannot select GPU %d: CUDA is already initialised in this process, so %s can no longer take effect", ordinal, visibleDevicesEnv)
	}
	current, isSet := os.LookupEnv(visibleDevicesEnv)
	value, err := narrowVisibleDevices(ordinal, current, isSet)
	if err != nil {
		return fmt.Errorf("%w: %v: -gpu counts the devices %s lists, from 0", ErrNoUsableGPU, err, visibleDevicesEnv)
	}
	if err := os.Setenv(visibleDevicesEnv, value); err != nil {
		return fmt.Errorf("selecting GPU %d: setting %s: %w", ordinal, visibleDevicesEnv, err)
	}
	return nil
}

// narrowVisibleDevices returns the CUDA_VISIBLE_DEVICES value that leaves only
// GPU ordinal visible. current is the value the user set, if isSet: the
// driver numbers the devices it lists from 0, so ordinal indexes into it.
func narrowVisibleDevices(ordinal int, current string, isSet bool) (string, error) {
	if !isSet {
		return strconv.Itoa(ordinal), nil
	}
	var listed []string
	for _, entry := range strings.Split(current, ",") {
		if entry = strings.TrimSpace(entry); entry != "" {
			listed = append(listed, entry)
		}
	}
	if ordinal >= len(listed) {
		return "", fmt.Errorf("GPU %d does not exist: %s=%q makes %d device(s) visible", ordinal, visibleDevicesEnv, current, len(listed))
	}
	return listed[ordinal], nil
}

func visibleDevicesDescription() string {
	if v, ok := os.LookupEnv(visibleDevicesEnv); ok {
		return v
	}
	return "all"
}

// deviceInfo is what Open logs and checks about a GPU.
type deviceInfo struct {
	name              string
	ccMajor, ccMinor  int
	totalMem, freeMem int64
	driverVersion     int // e.g. 13000 for CUDA 13.0
	compiledVersion   int // CUDA_VERSION of the cuda.h the binary was built with
}

// probe queries driver device number index. Free memory is only known inside
// a context, so probe briefly retains the device's primary context.
func probe(index int) (deviceInfo, error) {
	info := deviceInfo{
		driverVersion:   cu.Version(),
		compiledVersion: cu.CompiledVersion(),
	}
	dev, err := cu.GetDevice(index)
	if err != nil {
		return info, fmt.Errorf("getting device: %s", cu.ErrorString(err))
	}
	if info.name, err = dev.Name(); err != nil {
		return info, fmt.Errorf("reading name: %s", cu.ErrorString(err))
	}
	if info.ccMajor, err = dev.Attribute(cu.ComputeCapabilityMajor); err != nil {
		return info, fmt.Errorf("reading compute capability: %s", cu.ErrorString(err))
	}
	if info.ccMinor, err = dev.Attribute(cu.ComputeCapabilityMinor); err != nil {
		return info, fmt.Errorf("reading compute capability: %s", cu.ErrorString(err))
	}
	if info.totalMem, err = dev.TotalMem(); err != nil {
		return info, fmt.Errorf("reading total memory: %s", cu.ErrorString(err))
	}
	if info.freeMem, err = freeMemory(dev); err != nil {
		return info, err
	}
	return info, nil
}

// freeMemory reports the free memory of dev. The primary context has to be
// current on the calling OS thread while cuMemGetInfo runs, so the goroutine
// is pinned to its thread for the duration.
func freeMemory(dev cu.Device) (int64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		return 0, fmt.Errorf("creating a context (is the GPU busy, in use by another process in exclusive mode, or out of memory?): %s", cu.ErrorString(err))
	}
	defer dev.ReleasePrimaryCtx()
	if err := cu.SetCurrentContext(ctx); err != nil {
		return 0, fmt.Errorf("making the context current: %s", cu.ErrorString(err))
	}
	defer cu.SetCurrentContext(cu.CUContext{}) // leave no context bound to this thread
	free, _, err := cu.MemInfo()
	if err != nil {
		return 0, fmt.Errorf("reading free memory: %s", cu.ErrorString(err))
	}
	return free, nil
}

// check rejects GPUs and drivers this binary cannot use.
func (info deviceInfo) check() error {
	if cc := info.ccMajor*10 + info.ccMinor; cc < ptxComputeCapability {
		return fmt.Errorf("compute capability %d.%d is too old: the bundled Gorgonia kernels need %d.%d or newer",
			info.ccMajor, info.ccMinor, ptxComputeCapability/10, ptxComputeCapability%10)
	}
	// A binary built with CUDA N headers calls entry points that only drivers
	// of CUDA major version N or newer provide.
	if info.driverVersion/1000 < info.compiledVersion/1000 {
		return fmt.Errorf("the driver supports CUDA %s but this binary was built with CUDA %s: update the driver or build with an older toolkit",
			cudaVersionString(info.driverVersion), cudaVersionString(info.compiledVersion))
	}
	return nil
}

// cudaVersionString formats a CUDA version number such as 12040 as "12.4".
func cudaVersionString(v int) string {
	if v <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}
