package data

// Names of the four MNIST files, as published and as stored in the data folder.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// How many images the files that Files pins hold: every loaded set has
// exactly these counts, so flags can be checked against them before any
// download.
const (
	TrainImages = 60000
	TestImages  = 10000
)

// File is one file of the data set with its canonical content.
type File struct {
	Name   string // base name, e.g. "train-images-idx3-ubyte.gz"
	SHA256 string // lower-case hex digest of the .gz bytes
	Size   int64  // bytes; a download that grows past it is cut off
}

// Files returns the four MNIST files with the digests of the original
// release (identical on the HTTPS mirrors and in the Go module proxy copy).
// It is a func, not a var, so nobody can change the list at run time.
func Files() []File {
	return []File{
		{TrainImagesFile, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422},
		{TrainLabelsFile, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881},
		{TestImagesFile, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877},
		{TestLabelsFile, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542},
	}
}
