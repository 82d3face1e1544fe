// Writes an OCI layout in DIR holding a model with one SIZE-byte safetensors shard, tagged v1:
//   make-layout.ts DIR SIZE [docker | modelpack-raw | modelpack-tar | modelpack-tar-gzip]
// docker (the default): Docker model-spec v0.1, packed by packModel. The ModelPack ones (issue 19)
// hold the shard and a config.json as `.raw` layers (a file each), as uncompressed `.tar` layers
// (modctl's default for weights) or as `.tar+gzip` layers (gzip level 1: the content is incompressible
// anyway, so the gzip layer is the tar's size).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { type PackFile, packModel } from "../src/index.js";
import { createFsStore, createNodeHasher } from "../src/node/index.js";

const [dir = "", sizeArg = "0", layout = "docker"] = process.argv.slice(2);
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

/** A ustar header for a regular file (mode 0644, mtime 0, no owner). */
function tarHeader(name: string, length: number): Uint8Array {
  const header = new Uint8Array(512);
  const put = (at: number, text: string) => header.set(new TextEncoder().encode(text), at);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, `${length.toString(8).padStart(11, "0")}\0`);
  put(136, "00000000000\0");
  put(148, "        "); // the checksum counts its own field as spaces
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  const sum = header.reduce((n, b) => n + b, 0);
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return header;
}

/** A tar of one file, streamed: header, the file's bytes, padding to 512, two zero blocks. */
function tarOf(one: PackFile): { size: number; stream: () => Promise<ReadableStream<Uint8Array>> } {
  const pad = -one.size & 511;
  const size = 512 + one.size + pad + 1024;
  return {
    size,
    stream: async () => {
      const parts: (Uint8Array | (() => Promise<ReadableStream<Uint8Array>>))[] = [
        tarHeader(one.path, one.size),
        () => one.stream(0, one.size),
        new Uint8Array(pad + 1024),
      ];
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          for (;;) {
            if (reader) {
              const { done, value } = await reader.read();
              if (!done) return controller.enqueue(value);
              reader = undefined;
            }
            const next = parts.shift();
            if (next === undefined) return controller.close();
            if (next instanceof Uint8Array) return controller.enqueue(next);
            reader = (await next()).getReader();
          }
        },
      });
    },
  };
}

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

const bytesFile = (path: string, bytes: Uint8Array): PackFile => ({
  path,
  size: bytes.byteLength,
  stream: async (offset = 0, length = bytes.byteLength - offset) =>
    new Blob([bytes.slice(offset, offset + length)]).stream() as ReadableStream<Uint8Array>,
});

async function packModelPack(kind: string): Promise<void> {
  const store = createFsStore(dir);
  const scratch = await mkdtemp(join(tmpdir(), "oml-make-layout-"));
  const encoder = new TextEncoder();
  const configJson = bytesFile(
    "config.json",
    encoder.encode(JSON.stringify({ architectures: ["BenchModel"], model_type: "bench" })),
  );
  try {
    const layers: { mediaType: string; digest: string; size: number; annotations?: object }[] = [];
    const diffIds: string[] = [];
    for (const [one, role] of [
      [file, "weight"],
      [configJson, "weight.config"],
    ] as const) {
      let mediaType: string;
      let size: number;
      let stream: () => Promise<ReadableStream<Uint8Array>>;
      if (kind === "modelpack-raw") {
        mediaType = `application/vnd.cncf.model.${role}.v1.raw`;
        size = one.size;
        stream = () => one.stream(0, one.size);
      } else if (kind === "modelpack-tar") {
        mediaType = `application/vnd.cncf.model.${role}.v1.tar`;
        ({ size, stream } = tarOf(one));
      } else if (kind === "modelpack-tar-gzip") {
        mediaType = `application/vnd.cncf.model.${role}.v1.tar+gzip`;
        const tar = tarOf(one);
        diffIds.push(await sha256Of(await tar.stream()));
        const path = join(scratch, `${role}.tar.gz`);
        await pipeline(
          Readable.fromWeb((await tar.stream()) as never),
          createGzip({ level: 1 }),
          createWriteStream(path),
        );
        size = (await stat(path)).size;
        stream = async () => Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
      } else {
        throw new Error(`unknown layout ${kind}`);
      }
      const digest = await sha256Of(await stream());
      if (kind !== "modelpack-tar-gzip") diffIds.push(digest);
      await store.push({ digest, size }, await stream());
      layers.push({
        mediaType,
        digest,
        size,
        ...(kind === "modelpack-raw" ? { annotations: { "org.cncf.model.filepath": one.path } } : {}),
      });
    }
    const push = async (mediaType: string, value: object) => {
      const bytes = encoder.encode(JSON.stringify(value));
      const descriptor = {
        mediaType,
        digest: await sha256Of(new Blob([bytes]).stream()),
        size: bytes.byteLength,
      };
      await store.push(descriptor, new Blob([bytes]).stream());
      return descriptor;
    };
    const config = await push("application/vnd.cncf.model.config.v1+json", {
      descriptor: {},
      config: { architecture: "BenchModel", format: "safetensors" },
      modelfs: { type: "layers", diffIds },
    });
    const manifest = await push("application/vnd.oci.image.manifest.v1+json", {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.cncf.model.manifest.v1+json",
      config,
      layers,
    });
    await store.tag("v1", manifest);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

if (layout === "docker") {
  await packModel([file], { store: createFsStore(dir), tag: "v1", createHasher: createNodeHasher });
} else {
  await packModelPack(layout);
}
