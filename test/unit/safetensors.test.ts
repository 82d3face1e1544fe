import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Dtype, type OciError, toFloat32 } from "../../src/index.js";
import { buildTensorIndex, DTYPE_SIZES, HEADER_LIMIT, parseHeader, readHeader } from "../../src/internals.js";
import { headerLength } from "../../src/tensors/safetensors.js";
import { bf16Bytes, f16Bytes, f32Bytes, writeSafetensors } from "../support/safetensors.js";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function fileWith(header: unknown, dataBytes: number): Uint8Array {
  const json = enc(header);
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  return out;
}

async function refusal(file: Uint8Array): Promise<OciError> {
  try {
    await readHeader(async (o, l) => file.subarray(o, o + l), file.byteLength, "t.safetensors");
  } catch (e) {
    return e as OciError;
  }
  throw new Error("accepted");
}

describe("safetensors header", () => {
  const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

  it.each<[string, Uint8Array, RegExp]>([
    [
      "a header length beyond the file",
      (() => {
        const f = fileWith({}, 0);
        new DataView(f.buffer).setUint32(0, 9999, true);
        return f;
      })(),
      /runs past the end/,
    ],
    [
      "a header over the cap",
      (() => {
        const f = new Uint8Array(16);
        new DataView(f.buffer).setUint32(0, 200 * 1024 * 1024, true);
        return f;
      })(),
      /over the .* cap/,
    ],
    ["a file shorter than 8 bytes", new Uint8Array(5), /shorter than the 8-byte/],
    [
      "bad JSON",
      (() => {
        const j = new TextEncoder().encode("{nope");
        const f = new Uint8Array(8 + j.length);
        new DataView(f.buffer).setUint32(0, j.length, true);
        f.set(j, 8);
        return f;
      })(),
      /not valid JSON/,
    ],
    ["an unknown dtype", fileWith({ a: t("F7", [1], [0, 1]) }, 1), /unknown dtype "F7"/],
    [
      "missing data_offsets",
      fileWith({ a: { dtype: "F32", shape: [1] } }, 4),
      /"a" has no valid data_offsets/,
    ],
    [
      "a shape/length mismatch",
      fileWith({ a: t("F32", [2, 2], [0, 12]) }, 12),
      /"a" holds 12 bytes but shape \[2,2\] of F32 needs 16/,
    ],
    [
      "overlapping offsets",
      fileWith({ a: t("F32", [2], [0, 8]), b: t("F32", [2], [4, 12]) }, 12),
      /"b" overlaps/,
    ],
    ["reversed offsets", fileWith({ a: t("U8", [0], [4, 2]) }, 4), /ends \(2\) before it begins \(4\)/],
    ["a gap", fileWith({ a: t("U8", [2], [2, 4]) }, 4), /gap of 2 bytes before tensor "a"/],
    ["data past the end", fileWith({ a: t("U8", [8], [0, 8]) }, 4), /past the end/],
    ["trailing bytes", fileWith({ a: t("U8", [2], [0, 2]) }, 6), /4 bytes after the last tensor/],
    ["a negative dimension", fileWith({ a: t("U8", [-1], [0, 0]) }, 0), /has a shape that is not a list/],
    ["non-string metadata", fileWith({ __metadata__: { a: 1 } }, 0), /__metadata__/],
  ])("refuses %s with INVALID_SAFETENSORS", async (_, file, reason) => {
    const error = await refusal(file);
    expect(error.code).toBe("INVALID_SAFETENSORS");
    expect(error.message).toMatch(reason);
  });

  it("round-trips any header the reference writer produces", () => {
    const dtypes = Object.keys(DTYPE_SIZES) as Dtype[];
    const tensor = fc.record({
      dtype: fc.constantFrom(...dtypes),
      shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }),
    });
    const files = fc.uniqueArray(
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__"),
        tensor,
      ),
      {
        selector: ([name]) => name,
        maxLength: 8,
      },
    );
    fc.assert(
      fc.property(
        files,
        fc.option(fc.dictionary(fc.string(), fc.string()), { nil: undefined }),
        (entries, metadata) => {
          const specs = entries.map(([name, t]) => ({ name, ...t }));
          const file = writeSafetensors(specs, metadata);
          const length = new DataView(file.buffer).getUint32(0, true);
          const header = parseHeader(file.subarray(8, 8 + length), file.byteLength);
          expect(header.metadata).toEqual(metadata ?? {});
          // Zero-length tensors may share an offset, so compare by name: dtype, shape, offset, length.
          let offset = header.dataOffset;
          const expected = Object.fromEntries(
            specs.map((t) => {
              const bytes = t.shape.reduce((n, d) => n * d, 1) * DTYPE_SIZES[t.dtype];
              offset += bytes;
              return [t.name, { dtype: t.dtype, shape: t.shape, offset: offset - bytes, length: bytes }];
            }),
          );
          const actual = Object.fromEntries(header.tensors.map(({ name, ...rest }) => [name, rest]));
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 1000, seed: 1127 },
    );
  });
});

describe("tensor index and dtypes", () => {
  const shard = (names: string[]) =>
    writeSafetensors(names.map((name) => ({ name, dtype: "F32" as const, shape: [2] })));
  const file = (path: string, bytes: Uint8Array) => ({
    path,
    size: bytes.byteLength,
    read: async (o: number, l: number) => bytes.subarray(o, o + l),
  });

  it("indexes shards and refuses a name found in two", async () => {
    const index = await buildTensorIndex([
      file("a.safetensors", shard(["x", "y"])),
      file("b.safetensors", shard(["z"])),
    ]);
    expect([...index.keys()]).toEqual(["x", "y", "z"]);
    expect(index.get("z")?.file).toBe("b.safetensors");
    await expect(
      buildTensorIndex([file("a.safetensors", shard(["x"])), file("b.safetensors", shard(["x"]))]),
    ).rejects.toMatchObject({
      code: "INVALID_SAFETENSORS",
      message: expect.stringMatching(/"x" is in both a.safetensors and b.safetensors/),
    });
  });

  it("checks model.safetensors.index.json", async () => {
    const files = [file("a.safetensors", shard(["x"]))];
    await expect(buildTensorIndex(files, { x: "b.safetensors" })).rejects.toMatchObject({
      message: expect.stringMatching(/index file says/),
    });
    await expect(buildTensorIndex(files, { x: "a.safetensors", w: "a.safetensors" })).rejects.toMatchObject({
      message: expect.stringMatching(/no file holds: w/),
    });
  });

  it("converts f16 and bf16 to f32 exactly", () => {
    const values = [0, 1, -2, 0.5, 65504, -(2 ** -14), 3.140625];
    expect(Array.from(toFloat32("F16", f16Bytes(values)))).toEqual(values);
    const bvalues = [0, 1, -2, 0.5, 3.140625, 1e30 - (1e30 % 2 ** 80)];
    const exact = Array.from(new Float32Array(bvalues)).map((v) => {
      const b = new Uint32Array(new Float32Array([v]).buffer)[0] as number;
      return new Float32Array(new Uint32Array([b & 0xffff0000]).buffer)[0];
    });
    expect(Array.from(toFloat32("BF16", bf16Bytes(exact as number[])))).toEqual(exact);
    expect(Array.from(toFloat32("F32", f32Bytes([1.5, -3])))).toEqual([1.5, -3]);
  });
});

describe("safetensors names", () => {
  it('reads a tensor named "__proto__" as a tensor (found by the property test)', async () => {
    const { writeSafetensors: write } = await import("../support/safetensors.js");
    const file = write([{ name: "__proto__", dtype: "F64", shape: [] }]);
    const length = new DataView(file.buffer).getUint32(0, true);
    expect(parseHeader(file.subarray(8, 8 + length), file.byteLength).tensors.map((t) => t.name)).toEqual([
      "__proto__",
    ]);
  });
});

describe("safetensors header edges (pinned by mutation testing)", () => {
  const t = (dtype: unknown, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
  const first8 = (low: number, high: number) => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setUint32(0, low, true);
    new DataView(bytes.buffer).setUint32(4, high, true);
    return bytes;
  };
  const message = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return `${(e as OciError).code}: ${(e as OciError).message}`;
    }
    return "accepted";
  };
  /** parseHeader of `header` with `dataBytes` of data after it. */
  const parse = (header: unknown, dataBytes = 0) => {
    const file = fileWith(header, dataBytes);
    const length = new DataView(file.buffer).getUint32(0, true);
    return message(() => parseHeader(file.subarray(8, 8 + length), file.byteLength, "t.safetensors"));
  };
  const refused = (reason: string) => `INVALID_SAFETENSORS: Cannot read t.safetensors: ${reason}`;

  it("reads the header length as a little-endian u64, high word included", () => {
    expect(message(() => headerLength(first8(0, 1), 2 ** 40, "t"))).toBe(
      `INVALID_SAFETENSORS: Cannot read t: the header is ${2 ** 32} bytes, over the ${HEADER_LIMIT}-byte cap`,
    );
    expect(message(() => headerLength(first8(5, 2), 2 ** 40, "t"))).toMatch(
      new RegExp(`the header is ${2 * 2 ** 32 + 5} bytes`),
    );
  });

  it("takes a header of exactly the cap", () => {
    expect(headerLength(first8(HEADER_LIMIT, 0), 8 + HEADER_LIMIT, "t")).toBe(HEADER_LIMIT);
  });

  it("reads 8 bytes, then the header, never the whole file", async () => {
    const file = writeSafetensors([{ name: "w", dtype: "F32", shape: [1000] }]);
    const reads: [number, number][] = [];
    await readHeader(
      async (o, l) => {
        reads.push([o, l]);
        return file.subarray(o, o + l);
      },
      file.byteLength,
      "t",
    );
    const length = new DataView(file.buffer).getUint32(0, true);
    expect(reads).toEqual([
      [0, 8],
      [8, length],
    ]);
  });

  it("names the file a safetensors file when it is not told its name", () => {
    const json = enc([]);
    expect(message(() => parseHeader(json, 8 + json.byteLength))).toBe(
      "INVALID_SAFETENSORS: Cannot read safetensors file: the header is not a JSON object",
    );
  });

  it("refuses a header that is not UTF-8, keeping the decoder's error as the cause", () => {
    // {"a\xff": ...}: JSON once the bad byte is replaced, so only a strict decoder refuses it.
    const tensor = JSON.stringify(t("U8", [0], [0, 0]));
    const utf8 = (text: string) => new TextEncoder().encode(text);
    const bytes = new Uint8Array([...utf8('{"a'), 0xff, ...utf8(`":${tensor}}`)]);
    let error: OciError | undefined;
    try {
      parseHeader(bytes, 8 + bytes.byteLength, "t.safetensors");
    } catch (e) {
      error = e as OciError;
    }
    expect(error?.message).toBe("Cannot read t.safetensors: the header is not valid JSON");
    expect(error?.cause).toBeInstanceOf(TypeError);
  });

  it("keeps the JSON parser's error as the cause", () => {
    const json = new TextEncoder().encode("{nope");
    let error: OciError | undefined;
    try {
      parseHeader(json, 8 + json.byteLength);
    } catch (e) {
      error = e as OciError;
    }
    expect(error?.cause).toBeInstanceOf(SyntaxError);
  });

  it.each([["null"], ["[]"], ["1"], ['"ab"'], ["true"]])(
    "refuses the header %s: not a JSON object",
    (json) => {
      const bytes = new TextEncoder().encode(json);
      expect(message(() => parseHeader(bytes, 8 + bytes.byteLength, "t.safetensors"))).toBe(
        refused("the header is not a JSON object"),
      );
    },
  );

  it.each([['"x"'], ["null"], ['["a"]'], ['{"a":1}']])("refuses __metadata__ %s", (meta) => {
    expect(parse({ __metadata__: JSON.parse(meta) })).toBe(
      refused("__metadata__ must map strings to strings"),
    );
  });

  it.each([["null"], ["1"], ['"F32"']])("refuses a tensor that is %s: not an object", (entry) => {
    expect(parse({ a: JSON.parse(entry) })).toBe(refused('tensor "a" is not an object'));
  });

  it("refuses a dtype that is not a string, even one that names a dtype", () => {
    expect(parse({ a: t(["F32"], [1], [0, 4]) }, 4)).toBe(refused('tensor "a" has unknown dtype ["F32"]'));
  });

  it.each([[[-1]], [[1.5]], [["2"]], [[2 ** 53]], ["2"]])("refuses the shape %j", (shape) => {
    expect(parse({ a: t("U8", shape, [0, 2]) }, 2)).toBe(
      refused('tensor "a" has a shape that is not a list of non-negative integers'),
    );
  });

  it.each([[[0, 4, 8]], [[-4, 0]], [[0.5, 4.5]], [["0", 4]], [[0, 2 ** 53]], [[4]]])(
    "refuses the data_offsets %j",
    (offsets) => {
      expect(parse({ a: t("F32", [1], offsets) }, 8)).toBe(
        refused('tensor "a" has no valid data_offsets [begin, end]'),
      );
    },
  );

  it("says how many bytes a tensor holds when it does not begin at 0", () => {
    expect(parse({ a: t("U8", [2], [0, 2]), b: t("F32", [2], [2, 6]) }, 6)).toBe(
      refused('tensor "b" holds 4 bytes but shape [2] of F32 needs 8'),
    );
  });

  it("takes data that ends exactly at the end of the file", () => {
    expect(parse({ a: t("U8", [3], [0, 3]) }, 3)).toBe("accepted");
  });
});
