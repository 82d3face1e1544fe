// Writes an OCI layout holding a Docker v0.1 model with one SIZE-byte safetensors shard, tagged v1.
import { randomBytes } from "node:crypto";
import { type PackFile, packModel } from "../src/index.js";
import { createFsStore, createNodeHasher } from "../src/node/index.js";

const [dir = "", sizeArg = "0"] = process.argv.slice(2);
const size = Number(sizeArg);
// A safetensors header for one U8 tensor of the remaining bytes, then content made on the fly:
// the seed block repeated, its first 4 bytes stamped with the block number (the same bytes for any offset).
const body = size - 256;
const json = new TextEncoder().encode(
  JSON.stringify({ w: { dtype: "U8", shape: [body], data_offsets: [0, body] } }).padEnd(248 - 8, " "),
);
const prefix = new Uint8Array(8 + json.byteLength);
new DataView(prefix.buffer).setUint32(0, json.byteLength, true);
prefix.set(json, 8);
const total = prefix.byteLength + body;
const seed = randomBytes(4 * 1024 * 1024);
const file: PackFile = {
  path: "model.safetensors",
  size: total,
  stream: async (offset = 0, length = total - offset) => {
    let at = offset;
    const end = offset + length;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= end) return controller.close();
        if (at < prefix.byteLength) {
          const part = prefix.subarray(at, Math.min(prefix.byteLength, end));
          at += part.byteLength;
          return controller.enqueue(part);
        }
        const inBody = at - prefix.byteLength;
        const start = inBody % seed.byteLength;
        const n = Math.min(seed.byteLength - start, end - at);
        const chunk = Buffer.from(seed.subarray(start, start + n));
        if (start === 0 && n >= 4) chunk.writeUInt32LE(Math.floor(inBody / seed.byteLength) >>> 0, 0);
        at += n;
        controller.enqueue(chunk);
      },
    });
  },
};
await packModel([file], { store: createFsStore(dir), tag: "v1", createHasher: createNodeHasher });
