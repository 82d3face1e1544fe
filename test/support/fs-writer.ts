// A second process on an fs store (run with `node --import tsx`): pushes a blob made from a seed,
// at a given pace, optionally stalling after some bytes, or writes tags. Reports JSON lines on stdout.
import { createFsStore } from "../../src/node/index.js";

const [dir = "", command = "", ...args] = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

/** The same bytes in every process: xorshift32 from the seed. */
export function seeded(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

async function push() {
  const size = option("size", 8 * 1024 * 1024);
  const piece = 256 * 1024;
  const pace = option("pace", 0);
  const stallAfter = option("stall-after", Number.POSITIVE_INFINITY);
  const bytes = seeded(size, option("seed", 1));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const digest = `sha256:${Buffer.from(hash).toString("hex")}`;
  // The default 16 MiB between checkpoints: a second writer then finds none and starts at 0.
  const store = createFsStore(dir, {
    chunkSize: piece,
    checkpointBytes: option("checkpoint", 16 * 1024 * 1024),
  });
  let sent = 0;
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= stallAfter) {
        say({ event: "stalled", sent });
        return new Promise<void>(() => {}); // until killed
      }
      if (sent >= size) return controller.close();
      if (pace) await new Promise((resolve) => setTimeout(resolve, pace));
      controller.enqueue(bytes.slice(sent, sent + piece));
      sent += piece;
      say({ event: "sent", sent });
    },
  });
  say({ event: "pushing", digest });
  const result = await store.push({ digest, size }, source);
  say({ event: "done", digest, ...result });
}

async function tag() {
  const store = createFsStore(dir);
  const prefix = args[0] ?? "p";
  const descriptor = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${"a".repeat(64)}`,
    size: 1,
  };
  for (let i = 0; i < option("count", 20); i++) await store.tag(`${prefix}-${i}`, descriptor);
  say({ event: "done" });
}

await (command === "push" ? push() : tag()).catch((error: { code?: string; message?: string }) => {
  say({ event: "error", code: error.code, message: error.message });
  process.exitCode = 1;
});
