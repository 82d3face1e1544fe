// The GGUF header reader at its edges: how it reads (ranged reads that double from 4 KiB, never a
// byte twice, never past the file), each limit at its largest allowed value and one past it, and the
// exact reason each refusal gives. test/unit/gguf.test.ts reads the real files llama.cpp writes.
import { describe, expect, it } from "vitest";
import {
  GGUF_HEADER_LIMIT,
  ggmlType,
  ggmlTypeById,
  isQuantized,
  readGgufHeader,
} from "../../src/internals.js";
import { concat, ggufFixture, kv, le, type RawKv, T, writeGguf } from "../support/gguf.js";

/**
 * A ranged reader over `bytes` for a file of `size` bytes that records each read and fails the test
 * (with a plain Error, not an OciError) on a read before the start or past the end of the file.
 */
function strictRead(bytes: Uint8Array, size = bytes.byteLength) {
  const reads: [number, number][] = [];
  const read = async (offset: number, length: number) => {
    if (offset < 0 || length < 0 || offset + length > size)
      throw new Error(`read(${offset}, ${length}) outside the ${size}-byte file`);
    reads.push([offset, length]);
    return bytes.subarray(offset, offset + length);
  };
  return { read, reads };
}

function header(bytes: Uint8Array, file = "ok.gguf") {
  return readGgufHeader(strictRead(bytes).read, bytes.byteLength, file);
}

/** Reading `bytes` as a file of `fileSize` bytes is refused, with exactly this reason. */
async function refuse(bytes: Uint8Array, reason: string, fileSize = bytes.byteLength) {
  const error = await readGgufHeader(strictRead(bytes, fileSize).read, fileSize, "bad.gguf").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ code: "INVALID_CHECKPOINT", message: `Cannot read bad.gguf: ${reason}` });
}

const raw = (key: string, type: number, ...payload: Uint8Array[]): RawKv => ({
  key,
  type,
  payload: concat(...payload),
});
const u64 = (key: string, n: bigint) => raw(key, T.u64, le.u64(n));
const f32 = (key: string, n: number) => raw(key, T.f32, le.f32(n));
/** An array nested `levels` deep (1: a plain array) whose innermost array holds the one u8 7. */
const nested = (levels: number): Uint8Array =>
  levels === 1
    ? concat(le.u32(T.u8), le.u64(1), le.u8(7))
    : concat(le.u32(T.array), le.u64(1), nested(levels - 1));
const TOO_LARGE = 2n ** 63n; // 9223372036854775808
const HIGH = 2n ** 53n; // 9007199254740992: the first u64 the reader refuses

describe("GGUF headers are read in ranged reads that double from 4 KiB, never a byte twice, never past the file", () => {
  it("a small file without tensors: one read of the whole file, its data section unpadded at its end", async () => {
    const bytes = writeGguf({
      kvs: [kv.str("general.architecture", "llama"), kv.u32("llama.block_count", 2)],
    });
    expect(bytes.byteLength % 32).not.toBe(0);
    const { read, reads } = strictRead(bytes);
    const { metadata, tensors } = await readGgufHeader(read, bytes.byteLength, "ok.gguf");
    expect(reads).toEqual([[0, bytes.byteLength]]);
    expect(tensors).toEqual([]);
    expect(metadata.tensorCount).toBe(0);
    expect(metadata.dataOffset).toBe(bytes.byteLength);
    expect(metadata.entries.get("llama.block_count")).toBe(2);
  });

  it("a value across the first chunk's end: the rest of it is read from where the chunk ended", async () => {
    // 24 + (8 + 3 + 4 + 8 + 4032) + (8 + 1 + 4) = 4092: the u64 of "v" is the file's bytes 4092..4100.
    const value = 2n ** 63n + 5n;
    const bytes = writeGguf({ kvs: [kv.str("pad", "p".repeat(4032)), u64("v", value)] });
    expect(bytes.byteLength).toBe(4100);
    const { read, reads } = strictRead(bytes);
    const { metadata } = await readGgufHeader(read, bytes.byteLength, "ok.gguf");
    expect(metadata.entries.get("v")).toBe(value);
    expect(metadata.entries.get("pad")).toBe("p".repeat(4032));
    expect(reads).toEqual([
      [0, 4096],
      [4096, 4],
    ]);
  });

  it("a value longer than the next chunk is read in one read of what is missing; the last read stops at the end", async () => {
    // "s": 20 000 bytes at 45..20045; "t": 30 000 bytes at 20066..50066, the end of the file.
    const s = "s".repeat(20000);
    const t = "t".repeat(30000);
    const bytes = writeGguf({ kvs: [kv.str("s", s), kv.str("t", t)] });
    expect(bytes.byteLength).toBe(50066);
    const { read, reads } = strictRead(bytes);
    const { metadata } = await readGgufHeader(read, bytes.byteLength, "ok.gguf");
    expect(metadata.entries.get("s")).toBe(s);
    expect(metadata.entries.get("t")).toBe(t);
    expect(reads).toEqual([
      [0, 4096], // chunk 4 KiB
      [4096, 20045 - 4096], // the rest of "s", more than the 8 KiB chunk
      [20045, 16384], // chunk 16 KiB
      [36429, 50066 - 36429], // the rest of "t": the chunk (32 KiB) would run past the end
    ]);
  });

  it("a file shorter than its stated size: the short read is refused", async () => {
    const bytes = ggufFixture("tiny-llama.gguf");
    const { read } = strictRead(bytes.slice(0, 100), bytes.byteLength);
    await expect(readGgufHeader(read, bytes.byteLength, "bad.gguf")).rejects.toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: "Cannot read bad.gguf: the file ended before its header did",
    });
  });

  it("a file of exactly GGUF_HEADER_LIMIT bytes runs past its end, not past the limit", async () => {
    const big = writeGguf({ kvs: [raw("k", T.string, le.u64(200 * 1024 * 1024))] });
    await refuse(big, "the header runs past the end of the 104857600-byte file", GGUF_HEADER_LIMIT);
    await refuse(big, "the header is over the 104857600-byte limit", GGUF_HEADER_LIMIT + 1);
  });
});

describe("GGUF arrays: skipped while the header is read, read in one ranged read on demand", () => {
  it("an array that ends the file: its handle, then its items in one read of exactly its bytes", async () => {
    const bytes = writeGguf({
      kvs: [raw("one", T.array, le.u32(T.u32), le.u64(1), le.u32(7))],
    });
    const { read, reads } = strictRead(bytes);
    const { metadata } = await readGgufHeader(read, bytes.byteLength, "ok.gguf");
    const offset = bytes.byteLength - 4;
    expect(metadata.entries.get("one")).toEqual({
      type: "array",
      itemType: "u32",
      length: 1,
      offset,
      byteLength: 4,
    });
    expect(metadata.types.get("one")).toBe("array");
    reads.length = 0;
    expect(await metadata.array("one")).toEqual([7]);
    expect(reads).toEqual([[offset, 4]]);
  });

  it("arrays nest 8 deep, not 9", async () => {
    const bytes = writeGguf({ kvs: [raw("k", T.array, nested(8))] });
    const { metadata } = await header(bytes);
    expect(metadata.entries.get("k")).toMatchObject({
      itemType: "array",
      length: 1,
      byteLength: 6 * 12 + 13, // levels 2-7: type and count each; level 8: type, count, its u8
    });
    expect(await metadata.array("k")).toEqual([[[[[[[[7]]]]]]]]);
    await refuse(writeGguf({ kvs: [raw("k", T.array, nested(9))] }), `"k" nests arrays more than 8 deep`);
  });

  it("array() checks the bytes again: a file changed since its header was read is refused", async () => {
    // "k": an array of one array of two u8; the inner array's item type at `at`, its length at `at + 4`.
    const bytes = writeGguf({
      kvs: [raw("k", T.array, le.u32(T.array), le.u64(1), le.u32(T.u8), le.u64(2), le.u8(1), le.u8(2))],
    });
    const { metadata } = await readGgufHeader(strictRead(bytes).read, bytes.byteLength, "bad.gguf");
    expect(await metadata.array("k")).toEqual([[1, 2]]);
    const at = bytes.byteLength - 14;
    const original = bytes.slice();
    const afterChange = (offset: number, patch: Uint8Array) => {
      bytes.set(original);
      bytes.set(patch, offset);
      return metadata.array("k").then(
        () => undefined,
        (e: unknown) => e,
      );
    };
    expect(await afterChange(at, le.u32(13))).toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: "Cannot read bad.gguf: a nested array has unknown value type 13",
    });
    expect(await afterChange(at + 4, le.u64(TOO_LARGE))).toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: "Cannot read bad.gguf: an array length is 9223372036854775808, too large",
    });
    expect(await afterChange(at + 4, le.u64(3))).toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: `Cannot read bad.gguf: "k" ran past its end`,
    });
  });

  it("array() of a scalar or a missing key is NOT_FOUND, naming the key and the file", async () => {
    const { metadata } = await header(
      writeGguf({ kvs: [kv.str("general.architecture", "llama")] }),
      "m.gguf",
    );
    await expect(metadata.array("general.architecture")).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: `Cannot read "general.architecture" of m.gguf: it holds no such array`,
    });
    await expect(metadata.array("nope")).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: `Cannot read "nope" of m.gguf: it holds no such array`,
    });
  });

  it("an array's count is checked against the header bytes left, at the least size of its items", async () => {
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.u32), le.u64(100), new Uint8Array(100))] }),
      `array "k" claims 100 items, more than the 100 header bytes left can hold`,
    );
    // Each string takes at least its 8-byte length.
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.string), le.u64(2n ** 40n))] }),
      `array "k" claims 1099511627776 items, more than the 0 header bytes left can hold`,
    );
    // Each nested array takes at least its type and count: 12 bytes.
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.array), le.u64(2), new Uint8Array(20))] }),
      `array "k" claims 2 items, more than the 20 header bytes left can hold`,
    );
    // Exactly enough: ten u8 that end the file.
    const { metadata } = await header(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.u8), le.u64(10), new Uint8Array(10).fill(3))] }),
    );
    expect(await metadata.array("k")).toEqual(Array(10).fill(3));
  });
});

describe("GGUF limits: the largest allowed value reads, one more is refused", () => {
  it("tensor and key/value counts: 2^20 each", async () => {
    await refuse(
      writeGguf({ tensorCount: 2 ** 20 }),
      "it lists 1048576 tensors and 0 key/values, more than its 0 header bytes can hold",
    );
    await refuse(
      writeGguf({ tensorCount: 2 ** 20 + 1 }),
      "it lists 1048577 tensors, over the limit of 1048576",
    );
    await refuse(
      writeGguf({ kvCount: 2 ** 20 }),
      "it lists 0 tensors and 1048576 key/values, more than its 0 header bytes can hold",
    );
    await refuse(writeGguf({ kvCount: 2 ** 20 + 1 }), "it has 1048577 key/values, over the limit of 1048576");
  });

  it("counts are checked against the bytes left: a tensor info takes at least 24 bytes, a key/value 14", async () => {
    const tail = new Uint8Array(100);
    await refuse(
      concat(writeGguf({ tensorCount: 1000 }), tail),
      "it lists 1000 tensors and 0 key/values, more than its 100 header bytes can hold",
    );
    await refuse(
      concat(writeGguf({ kvCount: 1000 }), tail),
      "it lists 0 tensors and 1000 key/values, more than its 100 header bytes can hold",
    );
    // One key/value of exactly 14 bytes: a 1-byte key and a u8.
    const bytes = writeGguf({ kvs: [raw("k", T.u8, le.u8(200))] });
    expect(bytes.byteLength).toBe(24 + 14);
    expect((await header(bytes)).metadata.entries.get("k")).toBe(200);
  });

  it("u64 counts and lengths up to 2^53 - 1", async () => {
    await refuse(writeGguf({ tensorCount: HIGH }), "the tensor count is 9007199254740992, too large");
    await refuse(writeGguf({ kvCount: 2n ** 62n }), "the key/value count is 4611686018427387904, too large");
    const withKeyLength = (n: bigint) => concat(writeGguf({ kvCount: 1 }), le.u64(n), new Uint8Array(16));
    await refuse(withKeyLength(TOO_LARGE), "key 0's length is 9223372036854775808, too large");
    await refuse(
      writeGguf({ kvs: [raw("k", T.string, le.u64(HIGH - 1n))] }),
      "the header runs past the end of the 45-byte file",
    );
  });

  it("keys up to 64 KiB", async () => {
    const key = "k".repeat(64 * 1024);
    const { metadata } = await header(writeGguf({ kvs: [kv.u32(key, 1)] }));
    expect(metadata.entries.get(key)).toBe(1);
    const longer = concat(writeGguf({ kvCount: 1 }), le.u64(64 * 1024 + 1), new Uint8Array(64 * 1024 + 16));
    await refuse(longer, "key 0 is 65537 bytes long, over 65536");
  });

  it("tensor names up to 1024 bytes", async () => {
    const name = "n".repeat(1024);
    const { tensors } = await header(writeGguf({ tensors: [{ name, ne: [1], type: 0 }] }));
    expect(tensors.map((t) => t.name)).toEqual([name]);
    await refuse(
      writeGguf({ tensors: [{ name: `${name}n`, ne: [1], type: 0 }] }),
      "tensor 0's name is 1025 bytes long, over 1024",
    );
  });

  it("tensors of up to 4 dimensions, listed innermost first", async () => {
    const { tensors } = await header(writeGguf({ tensors: [{ name: "x", ne: [2, 3, 4, 5], type: 0 }] }));
    expect(tensors).toMatchObject([{ name: "x", dtype: "F32", shape: [5, 4, 3, 2], length: 120 * 4 }]);
    await refuse(
      writeGguf({ tensors: [{ name: "x", ne: [1, 1, 1, 1, 1], type: 0 }] }),
      `tensor "x" has 5 dimensions, over ggml's 4`,
    );
  });

  it("a tensor of safely countable elements whose byte length is not safe", async () => {
    await refuse(
      writeGguf({ tensors: [{ name: "x", ne: [2 ** 26, 2 ** 26], type: 0, bytes: 0 }] }),
      `tensor "x" is too large (4503599627370496 elements of F32)`,
    );
  });

  it("an empty tensor may end the file at its data section", async () => {
    const bytes = writeGguf({ tensors: [{ name: "e", ne: [0], type: 0 }] });
    const { metadata, tensors } = await header(bytes);
    expect(metadata.dataOffset).toBe(bytes.byteLength);
    expect(tensors).toEqual([{ name: "e", dtype: "F32", shape: [0], offset: bytes.byteLength, length: 0 }]);
  });
});

describe("GGUF refusals name the rule and the value", () => {
  it("versions: 0, 1, and a big-endian field shown as 8 hex digits", async () => {
    await refuse(writeGguf({ version: 0 }), "it is GGUF version 0; versions 2 and 3 are read");
    await refuse(
      writeGguf({ version: 1 }),
      "it is GGUF version 1, which llama.cpp no longer reads; convert it to v3",
    );
    await refuse(
      writeGguf({ version: 0x00020000 }),
      "it is big-endian (version field 0x00020000); only little-endian GGUF is read",
    );
  });

  it("value types and lengths, named by key", async () => {
    await refuse(writeGguf({ kvs: [raw("k", 13, new Uint8Array(8))] }), `key "k" has unknown value type 13`);
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(13), le.u64(0))] }),
      `array "k" has unknown value type 13`,
    );
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.u8), le.u64(TOO_LARGE))] }),
      `the length of "k" is 9223372036854775808, too large`,
    );
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.string), le.u64(1), le.u64(TOO_LARGE))] }),
      `a string length in "k" is 9223372036854775808, too large`,
    );
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.array), le.u64(1), le.u32(13), le.u64(0))] }),
      `an array in "k" has unknown value type 13`,
    );
    await refuse(
      writeGguf({ kvs: [raw("k", T.array, le.u32(T.array), le.u64(1), le.u32(T.u8), le.u64(TOO_LARGE))] }),
      `an array length in "k" is 9223372036854775808, too large`,
    );
  });

  it("tensor infos, named by index or name", async () => {
    const info = (...fields: Uint8Array[]) =>
      concat(writeGguf({ tensorCount: 1 }), ...fields, new Uint8Array(64));
    await refuse(info(le.u64(TOO_LARGE)), "tensor 0's name length is 9223372036854775808, too large");
    await refuse(
      info(le.str("x"), le.u32(2), le.u64(4), le.u64(TOO_LARGE)),
      `tensor "x"'s dimension 1 is 9223372036854775808, too large`,
    );
    await refuse(
      info(le.str("x"), le.u32(1), le.u64(4), le.u32(0), le.u64(TOO_LARGE)),
      `tensor "x"'s offset is 9223372036854775808, too large`,
    );
  });

  it("a data section, or a later tensor, past the end of the file", async () => {
    // Header 24 + two 33-byte tensor infos = 90, padded to 96; "b" (36 bytes) at 96 + 32.
    const two = writeGguf({
      tensors: [
        { name: "a", ne: [3], type: 0 },
        { name: "b", ne: [9], type: 0 },
      ],
      dataBytes: 32 + 36,
    });
    expect(two.byteLength).toBe(96 + 32 + 36);
    expect((await header(two)).metadata.dataOffset).toBe(96);
    await refuse(two.slice(0, -1), `tensor "b" (36 bytes at 128) runs past the end of the 163-byte file`);
    await refuse(two.slice(0, 95), "its data section would start at 96, past the end of the 95-byte file");
  });
});

describe("GGUF metadata: architecture, context length and chat template only when well typed", () => {
  const metadata = async (...kvs: RawKv[]) => (await header(writeGguf({ kvs }))).metadata;
  const context = async (value: RawKv) =>
    (await metadata(kv.str("general.architecture", "qwen2"), value)).contextLength;

  it("strings only for the architecture and the chat template", async () => {
    const m = await metadata(kv.u32("general.architecture", 1), kv.u32("tokenizer.chat_template", 2));
    expect(m.architecture).toBeUndefined();
    expect(m.chatTemplate).toBeUndefined();
    const s = await metadata(
      kv.str("general.architecture", "qwen2"),
      kv.str("tokenizer.chat_template", "{{x}}"),
    );
    expect(s.architecture).toBe("qwen2");
    expect(s.chatTemplate).toBe("{{x}}");
  });

  it("the context length of the file's architecture, as any integer type up to 2^53 - 1", async () => {
    expect(await context(kv.u32("qwen2.context_length", 32768))).toBe(32768);
    expect(await context(kv.u32("llama.context_length", 32768))).toBeUndefined();
    expect(await context(u64("qwen2.context_length", 131072n))).toBe(131072);
    expect(await context(u64("qwen2.context_length", HIGH - 1n))).toBe(Number.MAX_SAFE_INTEGER);
    expect(await context(u64("qwen2.context_length", HIGH))).toBeUndefined();
    expect(await context(raw("qwen2.context_length", T.i64, le.u64(2n ** 64n - 1n)))).toBe(-1);
    expect(await context(f32("qwen2.context_length", 4096))).toBe(4096);
    expect(await context(f32("qwen2.context_length", 4096.5))).toBeUndefined();
    expect(await context(kv.str("qwen2.context_length", "4096"))).toBeUndefined();
  });

  it("no architecture, no context length (not even under the key `undefined.context_length`)", async () => {
    const m = await metadata(kv.u32("undefined.context_length", 4096));
    expect(m.architecture).toBeUndefined();
    expect(m.contextLength).toBeUndefined();
  });
});

describe("ggml types", () => {
  it("by id and by name, as llama.cpp's GGML_QUANT_SIZES has them", () => {
    expect(ggmlTypeById(12)).toEqual({ id: 12, name: "Q4_K", blockSize: 256, typeSize: 144 });
    expect(ggmlType("Q8_0")).toEqual({ id: 8, name: "Q8_0", blockSize: 32, typeSize: 34 });
    expect(ggmlType("BF16")).toEqual({ id: 30, name: "BF16", blockSize: 1, typeSize: 2 });
    for (const retired of [4, 5, 31, 32, 33, 36, 37, 38, 42])
      expect(ggmlTypeById(retired), `${retired}`).toBeUndefined();
    expect(ggmlType("U8")).toBeUndefined();
  });

  it("quantized: stored in blocks of more than one element", () => {
    for (const q of ["Q4_0", "Q8_0", "Q4_K", "IQ2_XS", "MXFP4", "TQ1_0"])
      expect(isQuantized(q), q).toBe(true);
    for (const plain of ["F32", "F16", "BF16", "I8", "I64", "F64", "U8", "BOOL", "nope"])
      expect(isQuantized(plain), plain).toBe(false);
  });
});
