// Writers of zip checkpoints and torch pickles for tests, byte by byte, so a test can write the lie it needs.
import type { TensorFile } from "../../src/tensors/types.js";

const encoder = new TextEncoder();

export function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** Members' local parts, then the central directory, then its end record: the archive's bytes. */
export function concatZip(
  parts: Uint8Array[],
  central: Uint8Array[],
  count: number,
  directoryAt: number,
): Uint8Array {
  const cdSize = central.reduce((n, r) => n + r.byteLength, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, count, true);
  e.setUint16(10, count, true);
  e.setUint32(12, cdSize, true);
  e.setUint32(16, directoryAt, true);
  const bytes = new Uint8Array(directoryAt + cdSize + 22);
  let o = 0;
  for (const p of [...parts, ...central, end]) {
    bytes.set(p, o);
    o += p.byteLength;
  }
  return bytes;
}

export async function deflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface Member {
  name: string;
  body: Uint8Array;
  deflate?: boolean;
  /** The sizes in the local header as zip64 writes them past 4 GiB: 0xffffffff, then an extra field. */
  zip64?: boolean;
}

/** A zip of `members` and where each local header and central record starts, for patching. */
export async function writeZip(members: Member[]) {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  const local: number[] = [];
  let at = 0;
  for (const m of members) {
    const name = encoder.encode(m.name);
    const data = m.deflate ? await deflateRaw(m.body) : m.body;
    const header = new Uint8Array(30 + name.byteLength + (m.zip64 ? 20 : 0));
    const h = new DataView(header.buffer);
    h.setUint32(0, 0x04034b50, true);
    h.setUint16(4, 20, true);
    h.setUint16(8, m.deflate ? 8 : 0, true);
    h.setUint32(14, crc32(m.body), true);
    h.setUint32(18, data.byteLength, true);
    h.setUint32(22, m.body.byteLength, true);
    h.setUint16(26, name.byteLength, true);
    header.set(name, 30);
    if (m.zip64) {
      h.setUint32(18, 0xffffffff, true);
      h.setUint32(22, 0xffffffff, true);
      h.setUint16(28, 20, true);
      const x = 30 + name.byteLength;
      h.setUint16(x, 1, true);
      h.setUint16(x + 2, 16, true);
      h.setBigUint64(x + 4, BigInt(m.body.byteLength), true);
      h.setBigUint64(x + 12, BigInt(data.byteLength), true);
    }
    const record = new Uint8Array(46 + name.byteLength);
    const c = new DataView(record.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(10, m.deflate ? 8 : 0, true);
    c.setUint32(16, crc32(m.body), true);
    c.setUint32(20, data.byteLength, true);
    c.setUint32(24, m.body.byteLength, true);
    c.setUint16(28, name.byteLength, true);
    c.setUint32(42, at, true);
    record.set(name, 46);
    local.push(at);
    parts.push(header, data);
    central.push(record);
    at += header.byteLength + data.byteLength;
  }
  const centralAt: number[] = [];
  let cdSize = 0;
  for (const r of central) {
    centralAt.push(at + cdSize);
    cdSize += r.byteLength;
  }
  const bytes = concatZip(parts, central, members.length, at);
  const view = new DataView(bytes.buffer);
  return {
    bytes,
    /** Sets a member's compressed and uncompressed sizes in its central record, its local header, or both. */
    setSizes(index: number, compressed: number, size: number, where: "central" | "local" | "both" = "both") {
      if (where !== "local") {
        view.setUint32((centralAt[index] as number) + 20, compressed, true);
        view.setUint32((centralAt[index] as number) + 24, size, true);
      }
      if (where !== "central") {
        view.setUint32((local[index] as number) + 18, compressed, true);
        view.setUint32((local[index] as number) + 22, size, true);
      }
    },
  };
}

export const NPY_HEAD = 128;

/** A `.npy` of float32 values (format 1.0, header padded to NPY_HEAD bytes). */
export function npy(shape: number[], values: number[] = []): Uint8Array {
  let text = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")},), }`;
  text = `${text.padEnd(NPY_HEAD - 10 - 1)}\n`;
  const head = new Uint8Array(10 + text.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(head.buffer).setUint16(8, text.length, true);
  head.set(encoder.encode(text), 10);
  const out = new Uint8Array(head.byteLength + values.length * 4);
  out.set(head);
  new Float32Array(out.buffer, head.byteLength).set(values);
  return out;
}

export class Pickle {
  readonly parts: number[] = [0x80, 2];
  op(...bytes: number[]) {
    this.parts.push(...bytes);
    return this;
  }
  str(s: string) {
    const b = encoder.encode(s);
    const n = new Uint8Array(4);
    new DataView(n.buffer).setUint32(0, b.byteLength, true);
    return this.op(0x58, ...n, ...b); // BINUNICODE
  }
  int(v: number) {
    const n = new Uint8Array(8);
    if (!Number.isInteger(v)) {
      new DataView(n.buffer).setFloat64(0, v);
      return this.op(0x47, ...n); // BINFLOAT
    }
    new DataView(n.buffer).setInt32(0, v, true);
    return this.op(0x4a, ...n.subarray(0, 4)); // BININT
  }
  global(module: string, name: string) {
    return this.op(0x63, ...encoder.encode(`${module}\n${name}\n`));
  }
  tuple(items: (number | string)[]) {
    this.op(0x28);
    for (const i of items) typeof i === "number" ? this.int(i) : this.str(i);
    return this.op(0x74);
  }
  /** `_rebuild_tensor_v2(storage(key, numel), offset, shape, stride)`. */
  tensor(key: string, numel: number, offset: number, shape: (number | string)[], stride?: number[]) {
    this.global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    this.op(0x28)
      .str("storage")
      .global("torch", "FloatStorage")
      .str(key)
      .str("cpu")
      .int(numel)
      .op(0x74, 0x51);
    this.int(offset).tuple(shape);
    const strides =
      stride ?? shape.map((_, i) => shape.slice(i + 1).reduce((n: number, d) => n * Number(d), 1));
    return this.tuple(strides).op(0x74, 0x52); // TUPLE, REDUCE
  }
  put(i: number) {
    return this.op(0x71, i); // BINPUT
  }
  get(i: number) {
    return this.op(0x68, i); // BINGET
  }
  bytes() {
    return new Uint8Array([...this.parts, 0x2e]); // STOP
  }
}

/** A state dict `{ name: tensor }` over storage "0" holding `values`. */
export function stateDict(
  tensors: Record<string, { offset: number; shape: (number | string)[]; numel?: number }>,
  numel: number,
) {
  const p = new Pickle().op(0x7d, 0x28); // EMPTY_DICT, MARK
  for (const [name, t] of Object.entries(tensors))
    p.str(name).tensor("0", t.numel ?? numel, t.offset, t.shape);
  return p.op(0x75); // SETITEMS
}

export async function torchFile(pickle: Uint8Array, storage: Uint8Array) {
  return (
    await writeZip([
      { name: "archive/data.pkl", body: pickle },
      { name: "archive/data/0", body: storage },
      { name: "archive/version", body: encoder.encode("3\n") },
    ])
  ).bytes;
}

/** A file in memory that counts the bytes read from it. */
export function memoryFile(path: string, bytes: Uint8Array): TensorFile & { bytesRead: number } {
  const file = {
    path,
    size: bytes.byteLength,
    bytesRead: 0,
    read: async (offset: number, length: number) => {
      file.bytesRead += length;
      return bytes.slice(offset, offset + length);
    },
  };
  return file;
}

export const floats = (n: number) =>
  new Uint8Array(new Float32Array(Array.from({ length: n }, (_, i) => i)).buffer);
