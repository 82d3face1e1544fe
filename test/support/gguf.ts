// GGUF files written byte by byte, for the tests that need headers no real writer makes (hostile
// counts, overlaps, wrong sizes). Genuine files written by llama.cpp's `gguf` package are in
// test/fixtures/gguf/ (scripts/gguf-fixtures.py).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { concat } from "./blobs.js";

export const GGUF_FIXTURES = join(import.meta.dirname, "../fixtures/gguf");

/** A fixture file's bytes. */
export function ggufFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(GGUF_FIXTURES, name)));
}

/** What scripts/gguf-fixtures.py says `gguf.GGUFReader` read from each fixture. */
export interface ExpectedGguf {
  version: number;
  alignment: number;
  dataOffset: number;
  size: number;
  /** Arrays give `length`, and `value` (their items) or, when long, `head` (the first 8). */
  metadata: Record<
    string,
    { type: string; itemType?: string; value?: unknown; length?: number; head?: unknown[] }
  >;
  tensors: {
    name: string;
    type: string;
    ne: number[];
    offset: number;
    bytes: number;
    sha256: string;
    values?: number[];
  }[];
}

export function expectedGguf(): { generator: string; files: Record<string, ExpectedGguf> } {
  return JSON.parse(readFileSync(join(GGUF_FIXTURES, "expected.json"), "utf8"));
}

const encoder = new TextEncoder();

/** Little-endian byte writers. */
export const le = {
  u8: (n: number) => Uint8Array.of(n),
  u32(n: number): Uint8Array {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, n, true);
    return out;
  },
  u64(n: number | bigint): Uint8Array {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
    return out;
  },
  f32(n: number): Uint8Array {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setFloat32(0, n, true);
    return out;
  },
  str(s: string): Uint8Array {
    const bytes = encoder.encode(s);
    return concat(le.u64(bytes.byteLength), bytes);
  },
};

export { concat };

/** GGUF value type ids. */
export const T = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

/** A key/value: the key, then its value type and payload as raw bytes. */
export interface RawKv {
  key: string;
  type: number;
  payload: Uint8Array;
}

export const kv = {
  u32: (key: string, n: number): RawKv => ({ key, type: T.u32, payload: le.u32(n) }),
  str: (key: string, s: string): RawKv => ({ key, type: T.string, payload: le.str(s) }),
  strings: (key: string, items: string[]): RawKv => ({
    key,
    type: T.array,
    payload: concat(le.u32(T.string), le.u64(items.length), ...items.map(le.str)),
  }),
};

export interface RawTensor {
  name: string;
  /** ggml `ne`: innermost first. */
  ne: (number | bigint)[];
  /** ggml type id (0 F32, 1 F16, 8 Q8_0…). */
  type: number;
  /** Offset in the data section; default: after the one before, aligned. */
  offset?: number | bigint;
  /** Its size in bytes, to place the next one; default: as F32. */
  bytes?: number;
}

/**
 * A GGUF file: header, key/values, tensor infos, padding to `alignment`, and `dataBytes` of data
 * (default: what the tensors need).
 */
export function writeGguf(input: {
  version?: number;
  magic?: string;
  kvs?: RawKv[];
  tensors?: RawTensor[];
  alignment?: number;
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
  dataBytes?: number;
}): Uint8Array {
  const alignment = input.alignment ?? 32;
  const kvs = input.kvs ?? [];
  const tensors = input.tensors ?? [];
  const pad = (n: number) => Math.ceil(n / alignment) * alignment;
  let cursor = 0;
  const infos = tensors.map((t) => {
    const size = t.bytes ?? t.ne.reduce<number>((n, d) => n * Number(d), 1) * 4;
    const offset = t.offset ?? cursor;
    cursor = pad(Number(offset) + size);
    return concat(
      le.str(t.name),
      le.u32(t.ne.length),
      ...t.ne.map((d) => le.u64(d)),
      le.u32(t.type),
      le.u64(offset),
    );
  });
  const header = concat(
    encoder.encode(input.magic ?? "GGUF"),
    le.u32(input.version ?? 3),
    le.u64(input.tensorCount ?? tensors.length),
    le.u64(input.kvCount ?? kvs.length),
    ...kvs.map((k) => concat(le.str(k.key), le.u32(k.type), k.payload)),
    ...infos,
  );
  const start = tensors.length ? pad(header.byteLength) : header.byteLength;
  const out = new Uint8Array(start + (input.dataBytes ?? cursor));
  out.set(header);
  return out;
}

/** A ranged reader over bytes, counting what it was asked for. */
export function memoryRead(bytes: Uint8Array) {
  const counted = { calls: 0, bytes: 0 };
  const read = async (offset: number, length: number) => {
    counted.calls++;
    counted.bytes += length;
    return bytes.subarray(offset, offset + length);
  };
  return { read, counted };
}
