// Plain JavaScript over dist/: one pull of REF into a fresh fs store DIR (issue 19's rows), in its own
// process; its wall time and its CPU time (which load on the machine changes least). Every read of a stored blob goes through the store's `fetch`, wrapped here to count the
// bytes read back during the pull. Prints one JSON line: seconds, peak RSS, the store's blob bytes
// (`usage().bytes`), the bytes of every file under DIR (blobs, tags, layout files), the model's file
// bytes, the bytes read back, and how many files are served in place from a tar layer.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { pullModel } from "../dist/index.js";
import { createFsStore, createNodeHasher } from "../dist/node/index.js";

const [ref = "", dir = ""] = process.argv.slice(2);

async function bytesUnder(path) {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const inner = join(path, entry.name);
    total += entry.isDirectory() ? await bytesUnder(inner) : (await stat(inner)).size;
  }
  return total;
}

const base = createFsStore(dir);
/** Bytes read back from the store during the pull, by digest. */
const reads = new Map();
const store = {
  ...base,
  fetch: async (blob, options) =>
    (await base.fetch(blob, options)).pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          reads.set(blob.digest, (reads.get(blob.digest) ?? 0) + chunk.byteLength);
          controller.enqueue(chunk);
        },
      }),
    ),
};
const started = performance.now();
const cpu = process.cpuUsage();
const model = await pullModel(ref, { store, createHasher: createNodeHasher });
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
const cpuSeconds = (used.user + used.system) / 1e6;
const rssMiB = process.resourceUsage().maxRSS / 1024;
const files = [...model.files.values()];
const usage = await base.usage();
// Reads of the manifest's layers, and of anything else (its config blob: metadata).
const manifestSize = (await base.list()).find((b) => b.digest === model.digest)?.size ?? 0;
const manifest = JSON.parse(
  await new Response(await base.fetch({ digest: model.digest, size: manifestSize })).text(),
);
const layers = new Set(manifest.layers.map((l) => l.digest));
let readBack = 0;
let readBackOther = 0;
for (const [digest, bytes] of reads) {
  if (layers.has(digest)) readBack += bytes;
  else readBackOther += bytes;
}
process.stdout.write(
  `${JSON.stringify({
    seconds,
    cpuSeconds,
    rssMiB,
    storeBytes: usage.bytes,
    ingestBytes: usage.ingestBytes,
    diskBytes: await bytesUnder(dir),
    fileBytes: files.reduce((n, f) => n + f.size, 0),
    readBack,
    readBackOther,
    inPlace: files.filter((f) => f.layer).length,
  })}\n`,
);
