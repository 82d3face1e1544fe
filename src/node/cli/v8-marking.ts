import { setFlagsFromString } from "node:v8";

// Imported first by the CLI's entry, before anything else is loaded: V8's incremental marking off
// for the CLI's own process (never for a host that imports the library). A pull streams gigabytes
// through a process whose live heap is ~10 MB; at that size V8 starts a marking whenever the old
// generation's room under its limit falls below the young generation's size, which a stream of
// chunks brings about every ~25 ms: 128–138 full collections in a 1 GiB pull on loopback, against 1
// without marking (bench/README.md). A full collection of so small a heap is short either way. A
// `--incremental-marking` given to node itself wins.
if (!process.execArgv.some((arg) => arg.endsWith("incremental-marking"))) {
  setFlagsFromString("--no-incremental-marking");
}
