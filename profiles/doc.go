// Package profiles captures pprof profiles from live Go services, keeps
// them in a local store, and compares them.
//
// It sits in the middle of leaklab's data flow: live service → Fetch →
// Store → analysis (Diff here; watch and collect build on the same types)
// → render (text, JSON, a pprof file, pprof's web UI).
//
// One value carries a profile everywhere: Captured, a profile plus Meta
// (where it came from: target, type, time, service, labels). Fetch makes
// one from a URL, Read and ReadFile from bytes or a file, Store.Load from
// the store; Diff, Summarize and DiffProfile are plain functions over it.
// Everything that reads a profile is bounded by Limits (bytes read,
// decompressed size, sample count, stack depth) and answers bad input with
// one-line errors naming the target; their types (LimitError,
// NotAProfileError, StatusError, TimeoutError) say which kind of failure
// it was, for callers such as the collector that count them.
//
// Diffs of big profiles are aggregated straight from the profile.proto
// wire format (decode.go) rather than through
// github.com/google/pprof/profile's object graph, which is what makes
// diffing 200,000-stack profiles cheap; that package still parses,
// merges and writes every profile leaklab hands to pprof's tools.
package profiles
