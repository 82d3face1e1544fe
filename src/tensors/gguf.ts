import { OciError } from "../errors.js";
import { type GgmlType, ggmlTypeById } from "./ggml-types.js";
import { invalidCheckpoint } from "./invalid.js";

// GGUF, llama.cpp's file format (ggml-org/ggml, docs/gguf.md): "GGUF", u32 version, u64 tensor
// count, u64 key/value count, the key/values, the tensor infos, padding to `general.alignment`, then
// the tensor data. Every integer is little-endian here (big-endian files are refused), every string
// a u64 byte length and UTF-8 bytes.

/** Headers (key/values and tensor infos) larger than this are refused, as safetensors' are. */
export const GGUF_HEADER_LIMIT = 100 * 1024 * 1024;
/** The most tensors a GGUF file may list (the largest MoE models have some 100 000). */
export const GGUF_MAX_TENSORS = 1 << 20;
/** The most key/values a GGUF file may hold. */
export const GGUF_MAX_KEYS = 1 << 20;
/** The longest key, in bytes. */
const MAX_KEY = 64 * 1024;
/** The longest tensor name, in bytes (llama.cpp's own limit is 63; stable-diffusion.cpp's larger). */
const MAX_TENSOR_NAME = 1024;
/** Dimensions per tensor (ggml's GGML_MAX_DIMS). */
const MAX_DIMS = 4;
/** Arrays of arrays of …: how deep. */
const MAX_NESTING = 8;
/** The default `general.alignment`. */
const DEFAULT_ALIGNMENT = 32;
/** The first ranged read; each further one doubles, up to `MAX_CHUNK`. */
const FIRST_CHUNK = 4096;
const MAX_CHUNK = 4 * 1024 * 1024;

/** A GGUF metadata value type (`GGUFValueType`). */
export type GgufValueType =
  | "u8"
  | "i8"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "f32"
  | "bool"
  | "string"
  | "array"
  | "u64"
  | "i64"
  | "f64";

const VALUE_TYPES: readonly GgufValueType[] = [
  "u8",
  "i8",
  "u16",
  "i16",
  "u32",
  "i32",
  "f32",
  "bool",
  "string",
  "array",
  "u64",
  "i64",
  "f64",
];

/** Bytes of each fixed-size value type. */
const FIXED_SIZE: Partial<Record<GgufValueType, number>> = {
  u8: 1,
  i8: 1,
  bool: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** A scalar metadata value: 64-bit integers as `bigint`, other numbers as `number`. */
export type GgufScalar = number | bigint | boolean | string;

/**
 * An array metadata value, not decoded while the header is read (a tokenizer's vocabulary runs to
 * 150 000 strings): `GgufMetadata.array(key)` reads and decodes its items on demand.
 */
export interface GgufArray {
  readonly type: "array";
  /** The type of its items (`"array"` for nested arrays). */
  readonly itemType: GgufValueType;
  /** How many items it holds. */
  readonly length: number;
  /** Where its items start in the file (after the item type and count). */
  readonly offset: number;
  /** How many bytes its items take. */
  readonly byteLength: number;
}

/** A metadata value: a scalar, or an array to read with `GgufMetadata.array`. */
export type GgufValue = GgufScalar | GgufArray;

/** Decoded array items: scalars, or arrays of them for nested arrays. */
export type GgufItems = GgufScalar[] | GgufItems[];

/** A GGUF file's header, less its tensors: version, alignment, the key/values. */
export interface GgufMetadata {
  /** The file it was read from. */
  readonly file: string;
  /** The GGUF version: 2 or 3. */
  readonly version: number;
  /** `general.alignment`, else 32. */
  readonly alignment: number;
  /** Where the tensor data starts in the file. */
  readonly dataOffset: number;
  /** How many tensors the file holds. */
  readonly tensorCount: number;
  /** Every key and its value, in file order; arrays are `GgufArray` handles. */
  readonly entries: ReadonlyMap<string, GgufValue>;
  /** Every key's value type as the file declares it (`u32`, `f32`, `array`…): a number alone does not say. */
  readonly types: ReadonlyMap<string, GgufValueType>;
  /** `general.architecture` (`llama`, `qwen2`…), when it is a string. */
  readonly architecture: string | undefined;
  /** `<architecture>.context_length`, when it is an integer. */
  readonly contextLength: number | undefined;
  /** `tokenizer.chat_template`, when it is a string. */
  readonly chatTemplate: string | undefined;
  /**
   * The items of an array value (`tokenizer.ggml.tokens`, `tokenizer.ggml.scores`…), by one ranged
   * read of the file. `NOT_FOUND` when the key is missing or not an array.
   */
  array(key: string): Promise<GgufItems>;
}

/** One tensor of a GGUF file. Offsets are from the start of the file. */
export interface GgufTensorInfo {
  /** Its name in the file (`blk.0.attn_q.weight`). */
  name: string;
  /** Its ggml type name (`F32`, `Q4_K`…). */
  dtype: GgmlType;
  /** Its dimensions, outermost first (the file lists them innermost first, as ggml's `ne`). */
  shape: number[];
  /** Byte offset of its data in the file. */
  offset: number;
  /** Byte length of its data: blocks × bytes per block. */
  length: number;
}

/** A parsed GGUF header: its metadata and tensors (in file order, which is offset order). */
export interface GgufHeader {
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
}

type Read = (offset: number, length: number) => Promise<Uint8Array>;

const utf8 = new TextDecoder("utf-8");

/** Reads a file front to back through ranged reads of growing size, never past `end`. */
class Cursor {
  private buffer = new Uint8Array(0);
  /** File offset of `buffer[0]`. */
  private start = 0;
  /** File offset of the next byte to parse. */
  pos: number;
  private chunk: number;

  constructor(
    private readonly read: Read,
    /** No byte at or past this offset is read. */
    readonly end: number,
    private readonly fail: (reason: string) => OciError,
    private readonly endReason: string,
    from = 0,
    firstChunk = FIRST_CHUNK,
  ) {
    this.pos = from;
    this.chunk = firstChunk;
  }

  /** Bytes left before `end`. */
  get left(): number {
    return this.end - this.pos;
  }

  /** Makes `n` bytes from `pos` available; returns their index in `buffer`. */
  private async need(n: number): Promise<number> {
    // `pos` never moves back past `start`, so `at` is never negative; past the buffer (after a
    // `skip`), `subarray` clamps it and nothing is kept.
    const at = this.pos - this.start;
    if (at + n <= this.buffer.byteLength) return at;
    if (this.pos + n > this.end) throw this.fail(this.endReason);
    const kept = this.buffer.subarray(at);
    const from = this.pos + kept.byteLength;
    const length = Math.min(this.end - from, Math.max(this.chunk, n - kept.byteLength));
    this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
    const fresh = await this.read(from, length);
    if (fresh.byteLength < n - kept.byteLength) throw this.fail("the file ended before its header did");
    const next = new Uint8Array(kept.byteLength + fresh.byteLength);
    next.set(kept);
    next.set(fresh, kept.byteLength);
    this.buffer = next;
    this.start = this.pos;
    return 0;
  }

  private async view(n: number): Promise<DataView> {
    const at = await this.need(n);
    this.pos += n;
    return new DataView(this.buffer.buffer, this.buffer.byteOffset + at, n);
  }

  async bytes(n: number): Promise<Uint8Array> {
    const at = await this.need(n);
    this.pos += n;
    return this.buffer.subarray(at, at + n);
  }

  /** Moves past `n` bytes without reading them (they are fetched only if already buffered). */
  skip(n: number): void {
    if (this.pos + n > this.end) throw this.fail(this.endReason);
    this.pos += n;
  }

  async u32(): Promise<number> {
    return (await this.view(4)).getUint32(0, true);
  }

  /** A u64 as a number; `what` names it when it is over 2^53. */
  async u64(what: string): Promise<number> {
    const v = await this.view(8);
    const high = v.getUint32(4, true);
    if (high >= 0x200000) throw this.fail(`${what} is ${v.getBigUint64(0, true)}, too large`);
    return high * 2 ** 32 + v.getUint32(0, true);
  }

  async scalar(type: GgufValueType): Promise<GgufScalar> {
    switch (type) {
      case "u8":
        return (await this.view(1)).getUint8(0);
      case "i8":
        return (await this.view(1)).getInt8(0);
      case "bool":
        return (await this.view(1)).getUint8(0) !== 0;
      case "u16":
        return (await this.view(2)).getUint16(0, true);
      case "i16":
        return (await this.view(2)).getInt16(0, true);
      case "u32":
        return (await this.view(4)).getUint32(0, true);
      case "i32":
        return (await this.view(4)).getInt32(0, true);
      case "f32":
        return (await this.view(4)).getFloat32(0, true);
      case "u64":
        return (await this.view(8)).getBigUint64(0, true);
      case "i64":
        return (await this.view(8)).getBigInt64(0, true);
      case "f64":
        return (await this.view(8)).getFloat64(0, true);
      default:
        return utf8.decode(await this.bytes(await this.u64("a string length")));
    }
  }
}

function valueType(id: number, fail: (reason: string) => OciError, what: string): GgufValueType {
  const type = VALUE_TYPES[id];
  if (type === undefined) throw fail(`${what} has unknown value type ${id}`);
  return type;
}

/**
 * Moves past an array's items (its type and count already read), checking every count and string
 * length against what is left of the header: numeric items are skipped unread.
 */
async function skipItems(
  cursor: Cursor,
  itemType: GgufValueType,
  count: number,
  depth: number,
  key: string,
  fail: (reason: string) => OciError,
): Promise<void> {
  const size = FIXED_SIZE[itemType];
  // Strings take at least their 8-byte length, arrays their type and count.
  const least = size ?? (itemType === "string" ? 8 : 12);
  if (count * least > cursor.left)
    throw fail(
      `array "${key}" claims ${count} items, more than the ${cursor.left} header bytes left can hold`,
    );
  if (size !== undefined) {
    cursor.skip(count * size);
    return;
  }
  if (itemType === "string") {
    for (let i = 0; i < count; i++) cursor.skip(await cursor.u64(`a string length in "${key}"`));
    return;
  }
  if (depth >= MAX_NESTING) throw fail(`"${key}" nests arrays more than ${MAX_NESTING} deep`);
  for (let i = 0; i < count; i++) {
    const inner = valueType(await cursor.u32(), fail, `an array in "${key}"`);
    await skipItems(cursor, inner, await cursor.u64(`an array length in "${key}"`), depth + 1, key, fail);
  }
}

async function decodeItems(
  cursor: Cursor,
  itemType: GgufValueType,
  count: number,
  fail: (reason: string) => OciError,
): Promise<GgufItems> {
  if (itemType !== "array") {
    const out: GgufScalar[] = [];
    for (let i = 0; i < count; i++) out.push(await cursor.scalar(itemType));
    return out;
  }
  const out: GgufItems[] = [];
  for (let i = 0; i < count; i++) {
    const inner = valueType(await cursor.u32(), fail, "a nested array");
    out.push(await decodeItems(cursor, inner, await cursor.u64("an array length"), fail));
  }
  return out;
}

const align = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

/**
 * Reads and validates a GGUF header (v2 or v3, little-endian) by ranged reads from the front of the
 * file, in chunks that double from 4 KiB; numeric metadata arrays are skipped unread and no array is
 * decoded (see `GgufMetadata.array`). Refuses with `INVALID_CHECKPOINT`, naming the rule: a missing
 * magic, a big-endian file, versions other than 2 and 3, counts, string lengths or a header running
 * past the file or `GGUF_HEADER_LIMIT`, unknown value or ggml types, duplicate keys or tensor names,
 * an alignment that is not a power of two, rows that are not whole blocks, tensors that do not follow
 * one another at their aligned offsets (overlaps, gaps) or run past the end of the file.
 *
 * @param read Reads `length` bytes at `offset` of the file.
 * @param fileSize The file's size in bytes.
 * @param file The file's name, for errors.
 * @returns The metadata and the tensors, in file order.
 */
export async function readGgufHeader(read: Read, fileSize: number, file: string): Promise<GgufHeader> {
  const fail = (reason: string) => invalidCheckpoint(file, reason);
  const end = Math.min(fileSize, GGUF_HEADER_LIMIT);
  const endReason =
    fileSize > GGUF_HEADER_LIMIT
      ? `the header is over the ${GGUF_HEADER_LIMIT}-byte limit`
      : `the header runs past the end of the ${fileSize}-byte file`;
  const cursor = new Cursor(read, end, fail, endReason);
  if (fileSize < 24) throw fail(`it is ${fileSize} bytes, too short for a GGUF header`);
  const magic = await cursor.bytes(4);
  if (utf8.decode(magic) !== "GGUF") throw fail("it is not a GGUF file (its first bytes are not GGUF)");
  const version = await cursor.u32();
  if (version !== 0 && (version & 0xffff) === 0)
    throw fail(
      `it is big-endian (version field 0x${version.toString(16).padStart(8, "0")}); only little-endian GGUF is read`,
    );
  if (version === 1) throw fail("it is GGUF version 1, which llama.cpp no longer reads; convert it to v3");
  if (version !== 2 && version !== 3) throw fail(`it is GGUF version ${version}; versions 2 and 3 are read`);
  const tensorCount = await cursor.u64("the tensor count");
  if (tensorCount > GGUF_MAX_TENSORS)
    throw fail(`it lists ${tensorCount} tensors, over the limit of ${GGUF_MAX_TENSORS}`);
  const keyCount = await cursor.u64("the key/value count");
  if (keyCount > GGUF_MAX_KEYS)
    throw fail(`it has ${keyCount} key/values, over the limit of ${GGUF_MAX_KEYS}`);
  // A tensor info takes at least 24 bytes, a key/value 14.
  if (tensorCount * 24 + keyCount * 14 > cursor.left)
    throw fail(
      `it lists ${tensorCount} tensors and ${keyCount} key/values, more than its ${cursor.left} header bytes can hold`,
    );

  const entries = new Map<string, GgufValue>();
  const types = new Map<string, GgufValueType>();
  for (let i = 0; i < keyCount; i++) {
    const keyLength = await cursor.u64(`key ${i}'s length`);
    if (keyLength === 0) throw fail(`key ${i} is empty`);
    if (keyLength > MAX_KEY) throw fail(`key ${i} is ${keyLength} bytes long, over ${MAX_KEY}`);
    const key = utf8.decode(await cursor.bytes(keyLength));
    if (entries.has(key)) throw fail(`key "${key}" appears twice`);
    const type = valueType(await cursor.u32(), fail, `key "${key}"`);
    types.set(key, type);
    if (type !== "array") {
      entries.set(key, await cursor.scalar(type));
      continue;
    }
    const itemType = valueType(await cursor.u32(), fail, `array "${key}"`);
    const length = await cursor.u64(`the length of "${key}"`);
    const offset = cursor.pos;
    await skipItems(cursor, itemType, length, 1, key, fail);
    entries.set(key, { type: "array", itemType, length, offset, byteLength: cursor.pos - offset });
  }

  let alignment = DEFAULT_ALIGNMENT;
  if (entries.has("general.alignment")) {
    if (types.get("general.alignment") !== "u32")
      throw fail(`general.alignment is a ${types.get("general.alignment")}, not a u32`);
    alignment = entries.get("general.alignment") as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0)
      throw fail(`general.alignment ${alignment} is not a power of two`);
  }

  const tensors: GgufTensorInfo[] = [];
  const relative: number[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const nameLength = await cursor.u64(`tensor ${i}'s name length`);
    if (nameLength > MAX_TENSOR_NAME)
      throw fail(`tensor ${i}'s name is ${nameLength} bytes long, over ${MAX_TENSOR_NAME}`);
    const name = utf8.decode(await cursor.bytes(nameLength));
    const tensor = (reason: string) => fail(`tensor "${name}" ${reason}`);
    if (names.has(name)) throw fail(`tensor "${name}" appears twice`);
    names.add(name);
    const dimCount = await cursor.u32();
    if (dimCount > MAX_DIMS) throw tensor(`has ${dimCount} dimensions, over ggml's ${MAX_DIMS}`);
    const ne: number[] = [];
    for (let d = 0; d < dimCount; d++) ne.push(await cursor.u64(`tensor "${name}"'s dimension ${d}`));
    const typeId = await cursor.u32();
    const type = ggmlTypeById(typeId);
    if (!type) throw tensor(`has unknown ggml type ${typeId}`);
    const offset = await cursor.u64(`tensor "${name}"'s offset`);
    const elements = ne.reduce((n, d) => n * d, 1);
    if (!Number.isSafeInteger(elements)) throw tensor(`has too many elements ([${ne}])`);
    const row = ne[0] ?? 1;
    if (row % type.blockSize !== 0)
      throw tensor(
        `has rows of ${row} elements, not a whole number of ${type.name} blocks of ${type.blockSize}`,
      );
    const length = (elements / type.blockSize) * type.typeSize;
    if (!Number.isSafeInteger(length)) throw tensor(`is too large (${elements} elements of ${type.name})`);
    tensors.push({ name, dtype: type.name, shape: [...ne].reverse(), offset, length });
    relative.push(offset);
  }

  const dataOffset = tensorCount > 0 ? align(cursor.pos, alignment) : cursor.pos;
  if (dataOffset > fileSize)
    throw fail(`its data section would start at ${dataOffset}, past the end of the ${fileSize}-byte file`);
  // As llama.cpp requires: tensors follow one another in file order, each padded to the alignment.
  let expected = 0;
  for (const [i, t] of tensors.entries()) {
    const at = relative[i] as number;
    if (at < expected)
      throw fail(
        `tensor "${t.name}" at data offset ${at} overlaps the tensor before it (which ends, padded, at ${expected})`,
      );
    if (at > expected)
      throw fail(
        `tensor "${t.name}" at data offset ${at} leaves a gap after the tensor before it (expected ${expected})`,
      );
    if (dataOffset + at + t.length > fileSize)
      throw fail(
        `tensor "${t.name}" (${t.length} bytes at ${dataOffset + at}) runs past the end of the ${fileSize}-byte file`,
      );
    t.offset = dataOffset + at;
    expected = align(at + t.length, alignment);
  }

  const str = (key: string) => {
    const v = entries.get(key);
    return typeof v === "string" ? v : undefined;
  };
  const architecture = str("general.architecture");
  const context = architecture === undefined ? undefined : entries.get(`${architecture}.context_length`);
  const contextLength =
    typeof context === "number" && Number.isInteger(context)
      ? context
      : typeof context === "bigint" && context <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(context)
        : undefined;
  const metadata: GgufMetadata = {
    file,
    version,
    alignment,
    dataOffset,
    tensorCount,
    entries,
    types,
    architecture,
    contextLength,
    chatTemplate: str("tokenizer.chat_template"),
    async array(key) {
      const value = entries.get(key);
      if (typeof value !== "object")
        throw new OciError("NOT_FOUND", `Cannot read "${key}" of ${file}: it holds no such array`);
      const { offset, byteLength } = value;
      // One read of the whole array (bounded by the header limit, as the header was).
      const items = new Cursor(
        read,
        offset + byteLength,
        fail,
        `"${key}" ran past its end`,
        offset,
        byteLength,
      );
      return decodeItems(items, value.itemType, value.length, fail);
    },
  };
  return { metadata, tensors };
}
