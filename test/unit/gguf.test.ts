import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type GgufScalar, ggufMetadata, isOciError, toFloat32, typedArray } from "../../src/index.js";
import { buildTensorIndex, readGgufHeader } from "../../src/internals.js";
import { iterateTensors, readTensor } from "../../src/tensors/reader.js";
import type { TensorSource } from "../../src/tensors/types.js";
import {
  concat,
  expectedGguf,
  ggufFixture,
  kv,
  le,
  memoryRead,
  type RawKv,
  T,
  writeGguf,
} from "../support/gguf.js";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const expected = expectedGguf();
const FILES = Object.keys(expected.files);

function header(bytes: Uint8Array, file = "model.gguf") {
  return readGgufHeader(memoryRead(bytes).read, bytes.byteLength, file);
}

/** A stored model of one GGUF file, as the tensor reader sees it. */
function source(path: string, bytes: Uint8Array): TensorSource {
  return {
    reference: "test/gguf:v1",
    weights: [path],
    files: new Map([[path, {}]]),
    file: () => ({
      size: bytes.byteLength,
      stream: async ({ offset = 0, length = bytes.byteLength - offset } = {}) =>
        new Blob([bytes.slice(offset, offset + length)]).stream(),
    }),
  };
}

/** A metadata value as the sidecar writes it: 64-bit integers as strings. */
const plain = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(plain) : typeof v === "bigint" ? v.toString() : v;

describe("GGUF files written by llama.cpp's gguf package", () => {
  it("the fixtures are there", () => {
    expect(FILES).toEqual(expect.arrayContaining(["tiny-llama.gguf", "aligned.gguf", "large.gguf"]));
  });

  it.each(FILES)("%s: header, tensor infos and metadata as GGUFReader reads them", async (name) => {
    const bytes = ggufFixture(name);
    const want = expected.files[name];
    if (!want) throw new Error(name);
    expect(bytes.byteLength).toBe(want.size);
    const { metadata, tensors } = await header(bytes, name);
    expect(metadata.version).toBe(want.version);
    expect(metadata.alignment).toBe(want.alignment);
    expect(metadata.dataOffset).toBe(want.dataOffset);
    expect(metadata.tensorCount).toBe(want.tensors.length);
    expect(
      tensors.map((t) => ({ name: t.name, type: t.dtype, ne: [...t.shape].reverse(), offset: t.offset })),
    ).toEqual(want.tensors.map((t) => ({ name: t.name, type: t.type, ne: t.ne, offset: t.offset })));
    expect(tensors.map((t) => t.length)).toEqual(want.tensors.map((t) => t.bytes));
    expect([...metadata.entries.keys()]).toEqual(Object.keys(want.metadata));
    for (const [key, { type, itemType, value, length, head }] of Object.entries(want.metadata)) {
      const ours = metadata.entries.get(key);
      if (type === "array") {
        expect(ours, key).toMatchObject({ type: "array", itemType, length });
        const items = plain(await metadata.array(key)) as unknown[];
        expect(items.length, key).toBe(length);
        if (head) expect(items.slice(0, head.length), key).toEqual(head);
        else expect(items, key).toEqual(value);
      } else {
        expect(plain(ours as GgufScalar), key).toEqual(value);
      }
    }
  });

  it.each(FILES)("%s: every tensor's bytes and values equal what GGUFReader read", async (name) => {
    const bytes = ggufFixture(name);
    const want = expected.files[name]?.tensors ?? [];
    const model = source(name, bytes);
    const index = await buildTensorIndex([
      { path: name, size: bytes.byteLength, read: memoryRead(bytes).read },
    ]);
    expect([...index.keys()]).toEqual(want.map((t) => t.name));
    const seen: string[] = [];
    for await (const tensor of iterateTensors(model)) {
      const t = want.find((w) => w.name === tensor.name);
      if (!t) throw new Error(tensor.name);
      seen.push(tensor.name);
      const data = await tensor.data();
      expect(sha256(data), t.name).toBe(t.sha256);
      expect(sha256(await readTensor(model, t.name, index)), t.name).toBe(t.sha256);
      if (t.values && (t.type === "F32" || t.type === "F16" || t.type === "BF16"))
        expect(Array.from(toFloat32(t.type, data)), t.name).toEqual(t.values);
      if (t.type === "Q4_K" || t.type === "Q8_0" || t.type === "Q4_0")
        expect(typedArray(t.type, data)).toBe(data);
    }
    expect(seen).toEqual(want.map((t) => t.name));
  });

  it("tiny-llama.gguf: architecture, context length, chat template, tokenizer on demand", async () => {
    const bytes = ggufFixture("tiny-llama.gguf");
    const metadata = await ggufMetadata(source("tiny-llama.gguf", bytes));
    expect(metadata.architecture).toBe("llama");
    expect(metadata.contextLength).toBe(2048);
    expect(metadata.chatTemplate).toMatch(/^\{% for message in messages %\}/);
    expect(metadata.entries.get("tokenizer.ggml.tokens")).toMatchObject({
      type: "array",
      itemType: "string",
      length: 32,
    });
    const tokens = (await metadata.array("tokenizer.ggml.tokens")) as string[];
    expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x0A>"]);
    expect(tokens).toContain("🙂");
    expect(metadata.entries.get("test.u64")).toBe(2n ** 63n + 5n);
    await expect(metadata.array("general.architecture")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(ggufMetadata(source("x.safetensors", bytes))).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("a GGUF v2 file (same layout as v3) reads the same", async () => {
    const bytes = ggufFixture("aligned.gguf").slice();
    bytes.set(le.u32(2), 4);
    const { metadata, tensors } = await header(bytes);
    expect(metadata.version).toBe(2);
    expect(tensors).toEqual((await header(ggufFixture("aligned.gguf"))).tensors);
  });

  it("a split model: every shard's tensors, in file order; a name in two shards is refused", async () => {
    const shard = (path: string, names: string[]) => {
      const bytes = writeGguf({
        kvs: [kv.str("general.architecture", "llama")],
        tensors: names.map((name) => ({ name, ne: [4], type: 0 })),
      });
      return { path, size: bytes.byteLength, read: memoryRead(bytes).read };
    };
    const first = shard("model-00001-of-00002.gguf", ["a", "b"]);
    const index = await buildTensorIndex([first, shard("model-00002-of-00002.gguf", ["c"])]);
    expect([...index.values()].map((t) => `${t.file}:${t.name}`)).toEqual([
      "model-00001-of-00002.gguf:a",
      "model-00001-of-00002.gguf:b",
      "model-00002-of-00002.gguf:c",
    ]);
    await expect(buildTensorIndex([first, shard("model-00002-of-00002.gguf", ["b"])])).rejects.toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: expect.stringMatching(
        /tensor "b" is in both model-00001-of-00002\.gguf and model-00002-of-00002\.gguf/,
      ),
    });
  });

  it("reads a large header in growing chunks, skipping numeric arrays, and never the weights", async () => {
    const bytes = ggufFixture("large.gguf");
    const { read, counted } = memoryRead(bytes);
    const { metadata } = await readGgufHeader(read, bytes.byteLength, "large.gguf");
    expect(metadata.dataOffset).toBeGreaterThan(16 * 1024);
    // Chunks double from 4 KiB: the last may run past the header by as much as was read before it.
    expect(counted.bytes).toBeLessThan(2 * metadata.dataOffset + 4096);
    expect(counted.bytes).toBeLessThan(bytes.byteLength / 4);
    expect(counted.calls).toBeLessThan(12);
  });
});

const refuse = async (bytes: Uint8Array, message: RegExp, fileSize = bytes.byteLength) => {
  const error = await readGgufHeader(memoryRead(bytes).read, fileSize, "bad.gguf").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ code: "INVALID_CHECKPOINT" });
  expect((error as Error).message).toMatch(/^Cannot read bad\.gguf: /);
  expect((error as Error).message).toMatch(message);
};

describe("hostile GGUF headers are refused with INVALID_CHECKPOINT", () => {
  const f32 = (name: string, n: number, offset?: number) => ({
    name,
    ne: [n],
    type: 0,
    ...(offset === undefined ? {} : { offset }),
  });

  it("a well-formed written header reads (the writer below is sound)", async () => {
    const { tensors, metadata } = await header(
      writeGguf({ kvs: [kv.str("general.architecture", "x")], tensors: [f32("a", 3), f32("b", 9)] }),
    );
    expect(metadata.architecture).toBe("x");
    expect(tensors.map((t) => [t.name, t.offset - metadata.dataOffset, t.length])).toEqual([
      ["a", 0, 12],
      ["b", 32, 36],
    ]);
  });

  it("a big-endian file, written by gguf's own writer", async () => {
    await refuse(ggufFixture("big-endian.gguf"), /big-endian .*only little-endian GGUF is read/);
  });

  it("not GGUF, GGUF v1, a version from the future, too short", async () => {
    await refuse(writeGguf({ magic: "GGML" }), /not a GGUF file/);
    await refuse(writeGguf({ version: 1 }), /version 1/);
    await refuse(writeGguf({ version: 4 }), /version 4; versions 2 and 3 are read/);
    await refuse(new Uint8Array(10), /too short/);
  });

  it("a file cut anywhere in its header", async () => {
    const bytes = ggufFixture("tiny-llama.gguf");
    const { dataOffset } = expected.files["tiny-llama.gguf"] ?? { dataOffset: 0 };
    for (const cut of [24, 30, 100, 500, dataOffset - 200, dataOffset - 1])
      await refuse(bytes.slice(0, cut), /runs past the end|past the end of the|can hold|too short/);
  });

  it("a tensor whose data leaves the file, or whose data section does", async () => {
    await refuse(writeGguf({ tensors: [f32("a", 8)], dataBytes: 16 }), /tensor "a" .*runs past the end/);
    await refuse(
      writeGguf({ tensors: [f32("a", 8), f32("b", 8, 2 ** 40)], dataBytes: 64 }),
      /tensor "b" at data offset 1099511627776 leaves a gap/,
    );
    await refuse(writeGguf({ tensors: [f32("a", 4)], dataBytes: 0 }).slice(0, -1), /past the end/);
  });

  it("tensors that overlap, or leave a gap", async () => {
    await refuse(
      writeGguf({ tensors: [f32("a", 8), f32("b", 8, 0)] }),
      /tensor "b" at data offset 0 overlaps/,
    );
    await refuse(writeGguf({ tensors: [f32("a", 8), f32("b", 8, 16)] }), /tensor "b" .*overlaps/);
    await refuse(writeGguf({ tensors: [f32("a", 8), f32("b", 8, 64)] }), /tensor "b" .*leaves a gap/);
    await refuse(writeGguf({ tensors: [f32("a", 8, 32)] }), /tensor "a" .*leaves a gap/);
  });

  it("sizes that disagree with the ggml type's block size", async () => {
    await refuse(
      writeGguf({ tensors: [{ name: "q", ne: [33, 2], type: 8, bytes: 68 }] }),
      /tensor "q" has rows of 33 elements, not a whole number of Q8_0 blocks of 32/,
    );
    await refuse(
      writeGguf({ tensors: [{ name: "k", ne: [128], type: 12, bytes: 144 }] }),
      /Q4_K blocks of 256/,
    );
    await refuse(
      writeGguf({ tensors: [{ name: "x", ne: [4], type: 4 }] }),
      /tensor "x" has unknown ggml type 4/,
    );
    await refuse(writeGguf({ tensors: [{ name: "x", ne: [4], type: 99 }] }), /unknown ggml type 99/);
    await refuse(writeGguf({ tensors: [{ name: "x", ne: [1, 1, 1, 1, 1], type: 0 }] }), /5 dimensions/);
    await refuse(
      writeGguf({ tensors: [{ name: "x", ne: [2 ** 30, 2 ** 30], type: 0, bytes: 0 }] }),
      /tensor "x" has too many elements/,
    );
    await refuse(writeGguf({ tensors: [{ name: "x", ne: [2n ** 60n], type: 0, bytes: 0 }] }), /too large/);
  });

  it("counts and string lengths past any bound", async () => {
    await refuse(writeGguf({ tensorCount: 2n ** 40n }), /tensors, over the limit of 1048576/);
    await refuse(writeGguf({ kvCount: 2n ** 62n }), /too large/);
    await refuse(writeGguf({ kvCount: 1000 }), /more than its \d+ header bytes can hold/);
    await refuse(writeGguf({ tensorCount: 1000 }), /more than its \d+ header bytes can hold/);
    const huge = (type: number, payload: Uint8Array): RawKv => ({ key: "k", type, payload });
    await refuse(writeGguf({ kvs: [huge(T.string, le.u64(2n ** 40n))] }), /runs past the end/);
    await refuse(writeGguf({ kvs: [huge(T.string, le.u64(2n ** 63n))] }), /string length is \d+, too large/);
    await refuse(
      writeGguf({ kvs: [huge(T.array, concat(le.u32(T.u32), le.u64(2n ** 50n)))] }),
      /array "k" claims 1125899906842624 items, more than/,
    );
    await refuse(
      writeGguf({ kvs: [huge(T.array, concat(le.u32(T.string), le.u64(1), le.u64(2n ** 40n)))] }),
      /runs past the end/,
    );
    const deep = concat(
      ...Array.from({ length: 10 }, () => concat(le.u32(T.array), le.u64(1))),
      le.u32(T.u8),
    );
    await refuse(
      writeGguf({ kvs: [huge(T.array, concat(deep, le.u64(0)))] }),
      /nests arrays more than 8 deep/,
    );
    const longKey = concat(le.u64(2n ** 20n), new Uint8Array(16));
    await refuse(concat(writeGguf({ kvCount: 1 }), longKey), /key 0 is 1048576 bytes long/);
    const longName = writeGguf({ tensors: [{ name: "n".repeat(2000), ne: [1], type: 0 }] });
    await refuse(longName, /name is 2000 bytes long/);
  });

  it("a header over GGUF_HEADER_LIMIT, unknown value types, duplicates, bad alignments", async () => {
    const big = writeGguf({ kvs: [{ key: "k", type: T.string, payload: le.u64(200 * 1024 * 1024) }] });
    await refuse(big, /header is over the 104857600-byte limit/, 300 * 1024 * 1024);
    await refuse(
      writeGguf({ kvs: [{ key: "k", type: 13, payload: new Uint8Array(8) }] }),
      /unknown value type 13/,
    );
    await refuse(writeGguf({ kvs: [kv.u32("k", 1), kv.u32("k", 2)] }), /key "k" appears twice/);
    await refuse(writeGguf({ kvs: [kv.str("", "x")] }), /key 0 is empty/);
    await refuse(writeGguf({ tensors: [f32("a", 1), f32("a", 1)] }), /tensor "a" appears twice/);
    await refuse(writeGguf({ kvs: [kv.u32("general.alignment", 48)] }), /alignment 48 is not a power of two/);
    await refuse(writeGguf({ kvs: [kv.u32("general.alignment", 0)] }), /alignment 0 is not a power of two/);
    await refuse(
      writeGguf({ kvs: [kv.str("general.alignment", "32")] }),
      /general.alignment is a string, not a u32/,
    );
  });

  it("a non-default alignment places the data section and the tensors", async () => {
    const { metadata, tensors } = await header(
      writeGguf({
        alignment: 256,
        kvs: [kv.u32("general.alignment", 256)],
        tensors: [f32("a", 3), f32("b", 3)],
      }),
    );
    expect(metadata.alignment).toBe(256);
    expect(metadata.dataOffset % 256).toBe(0);
    expect(tensors.map((t) => t.offset - metadata.dataOffset)).toEqual([0, 256]);
  });
});

describe("fuzzing: the GGUF reader refuses bad input only with OciError", () => {
  it("mutated, truncated and random headers", async () => {
    const valid = ggufFixture("tiny-llama.gguf");
    const { dataOffset } = expected.files["tiny-llama.gguf"] ?? { dataOffset: valid.byteLength };
    const damaged = fc.oneof(
      fc
        .array(fc.tuple(fc.nat(dataOffset - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        })
        .map((changes) => {
          const copy = valid.slice();
          for (const [at, value] of changes) copy[at] = value;
          return copy;
        }),
      fc.nat(valid.byteLength).map((n) => valid.slice(0, n)),
      fc.uint8Array({ maxLength: 400 }).map((tail) => concat(valid.slice(0, 8), tail)),
    );
    const details = await fc.check(
      fc.asyncProperty(damaged, async (bytes) => {
        try {
          const { metadata } = await readGgufHeader(memoryRead(bytes).read, bytes.byteLength, "fuzz.gguf");
          for (const [key, value] of metadata.entries)
            if (typeof value === "object") await metadata.array(key);
          return true;
        } catch (error) {
          if (isOciError(error)) return true;
          throw error;
        }
      }),
      { seed: 1127, numRuns: 1500 },
    );
    expect(details.failed, fc.defaultReportMessage(details)).toBe(false);
  });
});
