import { describe, expect, it } from "vitest";
import type { OciError } from "../../src/index.js";
import { readEntry } from "../../src/tensors/reader.js";
import { buildTensorIndex } from "../../src/tensors/tensor-index.js";
import {
  floats,
  memoryFile,
  NPY_HEAD,
  npy,
  Pickle,
  stateDict,
  torchFile,
  writeZip,
} from "../support/checkpoint-files.js";

async function refusal(path: string, bytes: Uint8Array): Promise<OciError> {
  try {
    await buildTensorIndex([memoryFile(path, bytes)]);
  } catch (e) {
    return e as OciError;
  }
  throw new Error("accepted");
}

describe("checkpoint pickles expand boundedly", () => {
  it("refuses shared nested dicts that flatten to millions of tensors (a few hundred bytes → 2^21), quickly", async () => {
    const p = new Pickle().op(0x7d).str("w").tensor("0", 1, 0, [1]).op(0x73).put(0); // {w: tensor}
    for (let level = 1; level <= 21; level++)
      p.op(0x7d, 0x28)
        .str("a")
        .get(level - 1)
        .str("b")
        .get(level - 1)
        .op(0x75)
        .put(level);
    const started = Date.now();
    const error = await refusal("bomb.bin", await torchFile(p.bytes(), floats(1)));
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/^Cannot load the checkpoint: .*expands to more than/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("refuses shared empty dicts nested deep (no tensor at all, an exponential walk)", async () => {
    const p = new Pickle().op(0x7d).put(0);
    for (let level = 1; level <= 23; level++)
      p.op(0x7d, 0x28)
        .str("a")
        .get(level - 1)
        .str("b")
        .get(level - 1)
        .op(0x75)
        .put(level);
    const error = await refusal("empty.bin", await torchFile(p.bytes(), floats(1)));
    expect(error.code).toBe("INVALID_CHECKPOINT");
  });

  it("refuses a dict key that is not a name (a list of shared lists would print exponentially)", async () => {
    const p = new Pickle().op(0x5d).put(0); // []
    for (let level = 1; level <= 24; level++)
      p.op(0x5d, 0x28)
        .get(level - 1)
        .get(level - 1)
        .op(0x65)
        .put(level);
    p.op(0x7d).get(24).tensor("0", 1, 0, [1]).op(0x73);
    const error = await refusal("key.bin", await torchFile(p.bytes(), floats(1)));
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/key/);
  });

  it("still reads a genuine-looking state dict", async () => {
    const file = await torchFile(
      stateDict({ a: { offset: 0, shape: [2] }, b: { offset: 2, shape: [2, 1] } }, 4).bytes(),
      floats(4),
    );
    const index = await buildTensorIndex([memoryFile("ok.bin", file)]);
    expect(index.get("b")).toMatchObject({ dtype: "F32", shape: [2, 1], length: 8 });
  });
});

describe("zip members that lie are refused", () => {
  it("a stored member declaring more bytes than it stores (its tensor would overlap the next member)", async () => {
    const zip = await writeZip([
      { name: "a.npy", body: npy([1024], [1, 2, 3, 4]) },
      { name: "b.npy", body: npy([2], [5, 6]) },
    ]);
    zip.setSizes(0, NPY_HEAD + 16, NPY_HEAD + 4096);
    const error = await refusal("lie.npz", zip.bytes);
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/a\.npy/);
  });

  it("accepts a local header that gives its sizes in a zip64 extra field, and checks them", async () => {
    const members = [
      { name: "a.npy", body: npy([4], [1, 2, 3, 4]), zip64: true },
      { name: "b.npy", body: npy([2], [5, 6]), deflate: true, zip64: true },
    ];
    const index = await buildTensorIndex([memoryFile("z64.npz", (await writeZip(members)).bytes)]);
    expect(index.get("b")).toMatchObject({ member: "b.npy", shape: [2] });
    const zip = await writeZip(members);
    zip.setSizes(0, NPY_HEAD + 8, NPY_HEAD + 8, "central");
    expect((await refusal("z64.npz", zip.bytes)).message).toMatch(/local header/);
  });

  it("a local header whose sizes disagree with the central directory", async () => {
    const zip = await writeZip([
      { name: "a.npy", body: npy([4], [1, 2, 3, 4]) },
      { name: "b.npy", body: npy([2], [5, 6]) },
    ]);
    zip.setSizes(0, NPY_HEAD + 8, NPY_HEAD + 8, "local");
    const error = await refusal("local.npz", zip.bytes);
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/local header/);
  });

  it("a member whose data runs over the next member's local header", async () => {
    const zip = await writeZip([
      { name: "a.npy", body: npy([4], [1, 2, 3, 4]) },
      { name: "b.npy", body: npy([2], [5, 6]) },
    ]);
    zip.setSizes(0, NPY_HEAD + 16 + 10, NPY_HEAD + 16 + 10);
    const error = await refusal("over.npz", zip.bytes);
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/overlap/);
  });

  it("a member whose data runs into the central directory", async () => {
    const zip = await writeZip([{ name: "a.npy", body: npy([4], [1, 2, 3, 4]) }]);
    zip.setSizes(0, NPY_HEAD + 16 + 20, NPY_HEAD + 16 + 20);
    const error = await refusal("cd.npz", zip.bytes);
    expect(error.code).toBe("INVALID_CHECKPOINT");
  });

  it("two members with the same name (readers disagree on which one counts)", async () => {
    const pickle = stateDict({ t: { offset: 0, shape: [2] } }, 2).bytes();
    const zip = await writeZip([
      { name: "archive/data.pkl", body: pickle },
      { name: "archive/data/0", body: floats(2) },
      { name: "archive/data/0", body: floats(2).reverse() },
    ]);
    const error = await refusal("twice.pt", zip.bytes);
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/archive\/data\/0.*twice/);
  });

  it.each([
    ["a negative storage offset (before its storage's data)", { offset: -2, shape: [2] }],
    ["a fractional storage offset", { offset: 0.5, shape: [2] }],
    ["a negative dimension", { offset: 0, shape: [-2] }],
    ["a dimension that is not a number", { offset: 0, shape: ["2"] }],
    ["more elements than its storage declares", { offset: 0, shape: [4], numel: 2 }],
  ])("a .pt tensor with %s", async (_, tensor) => {
    const error = await refusal("t.pt", await torchFile(stateDict({ t: tensor }, 4).bytes(), floats(4)));
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(/tensor "t"/);
  });

  it("a deflated member that inflates past its declared size", async () => {
    const zip = await writeZip([{ name: "a.npy", body: npy([64], Array(64).fill(1)), deflate: true }]);
    zip.setSizes(0, new DataView(zip.bytes.buffer).getUint32(18, true), NPY_HEAD + 16);
    const error = await refusal("grow.npz", zip.bytes);
    expect(error.code).toBe("INVALID_CHECKPOINT");
  });
});

describe("deflated members inflate only what is read", () => {
  // 8 MiB that deflate cannot shrink, after a small array: the member is 8 MiB compressed.
  const noise = new Uint8Array(8 * 1024 * 1024);
  for (let i = 0, x = 1; i < noise.byteLength; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    noise[i] = x >>> 24;
  }
  const body = new Uint8Array(NPY_HEAD + 16 + noise.byteLength);
  body.set(npy([4], [1, 2, 3, 4]));
  body.set(noise, NPY_HEAD + 16);

  it("indexes a member from its head, and reads a tensor without inflating the rest", async () => {
    const file = memoryFile("big.npz", (await writeZip([{ name: "a.npy", body, deflate: true }])).bytes);
    const index = await buildTensorIndex([file]);
    expect(index.get("a")).toMatchObject({ member: "a.npy", offset: NPY_HEAD, length: 16 });
    expect(file.bytesRead).toBeLessThan(noise.byteLength / 2);
    file.bytesRead = 0;
    const source = {
      file: () => ({
        size: file.size,
        stream: async ({
          offset = 0,
          length = file.size - offset,
        }: {
          offset?: number;
          length?: number;
        } = {}) => new Blob([(await file.read(offset, length)) as Uint8Array<ArrayBuffer>]).stream(),
      }),
    };
    const data = await readEntry(source, index.get("a") as never);
    expect(Array.from(new Float32Array(data.buffer, data.byteOffset, 4))).toEqual([1, 2, 3, 4]);
    expect(data.buffer.byteLength).toBe(16);
    expect(file.bytesRead).toBeLessThan(noise.byteLength / 2);
  });
});
