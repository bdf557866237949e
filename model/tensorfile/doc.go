// Package tensorfile reads and writes safetensors files
// (https://github.com/huggingface/safetensors) without knowing what the
// tensors mean: the frame (an 8-byte little-endian header length N, N bytes
// of JSON header, then the tensors' bytes back to back), the header's
// entries and "__metadata__", the layout of the tensors over the data, an
// exact match against the tensors a caller expects, and a checksum of
// metadata and data kept in the metadata.
//
// Package model maps its parameters and checkpoints onto these files. This
// package imports nothing of Gorgonia on purpose: Go's fuzzer checks the
// coverage counters of the whole test binary after every input, and a
// binary without Gorgonia fuzzes the parsers about ten times faster.
//
// Every function here never panics on bad input and allocates nothing in
// proportion to lengths a file claims, only to what it really holds.
// Errors are one line naming the problem, without the file's name, which
// the caller adds.
package tensorfile
