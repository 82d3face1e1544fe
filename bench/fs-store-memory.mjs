// Plain JavaScript over dist/, so the process holds nothing but the work (no TypeScript loader).
// One measurement, in its own process (peak RSS is per process): push SIZE bytes through the fs
// store ("store") or write them to a plain file ("plain", "plain-fsync": flushed to disk at the end,
// as the store flushes a blob before committing it; the baselines). Prints one JSON line.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFsStore } from "../dist/node/index.js";

const [mode = "store", sizeArg = "268435456"] = process.argv.slice(2);
const size = Number(sizeArg);
const BLOCK = 4 * 1024 * 1024;
const seed = randomBytes(BLOCK);

/** Deterministic content: the seed block with its index stamped in, repeated. */
function content(from = 0) {
  let at = from;
  return new ReadableStream({
    pull(controller) {
      if (at >= size) return controller.close();
      const index = Math.floor(at / BLOCK);
      const block = Buffer.from(seed);
      block.writeUInt32LE(index, 0);
      const start = at - index * BLOCK;
      const end = Math.min(BLOCK, size - index * BLOCK);
      controller.enqueue(block.subarray(start, end));
      at = index * BLOCK + end;
    },
  });
}

const dir = await mkdtemp(join(tmpdir(), "oml-bench-"));
try {
  let digest = "";
  if (mode === "store") {
    const hash = createHash("sha256");
    for await (const chunk of content()) hash.update(chunk);
    digest = `sha256:${hash.digest("hex")}`;
  }
  const started = performance.now();
  if (mode === "store") {
    await createFsStore(dir).push({ digest, size }, async (offset) => content(offset));
  } else {
    const file = await open(join(dir, "plain"), "w");
    for await (const chunk of content()) await file.write(chunk);
    if (mode === "plain-fsync") await file.datasync();
    await file.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ mode, size, seconds, gbps: size / seconds / 1e9, rssMiB })}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
