import { OciError } from "../errors.js";

/** Bytes per element of each safetensors dtype. */
export const DTYPE_SIZES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

/** A safetensors element type: `F32`, `BF16`, `I64`, `BOOL`… (the keys of `DTYPE_SIZES`). */
export type Dtype = keyof typeof DTYPE_SIZES;

/** One tensor of a safetensors file. Offsets are from the start of the file. */
export interface TensorInfo {
  /** The tensor's name in the header (`model.embed_tokens.weight`). */
  name: string;
  /** Its element type. */
  dtype: Dtype;
  /** Its dimensions, outermost first; `[]` for a scalar. */
  shape: number[];
  /** Byte offset of its data in the file. */
  offset: number;
  /** Byte length of its data. */
  length: number;
}

export interface SafetensorsHeader {
  /** Where the data section starts (8 + header length). */
  dataOffset: number;
  metadata: Record<string, string>;
  /** In data order. */
  tensors: TensorInfo[];
}

/** Headers larger than this are refused (the safetensors reference implementation uses the same cap). */
export const HEADER_LIMIT = 100 * 1024 * 1024;

function invalid(file: string, reason: string): OciError {
  return new OciError("INVALID_SAFETENSORS", `Cannot read ${file}: ${reason}`);
}

/** The header length from the first 8 bytes (little-endian u64), checked against the cap and the file. */
export function headerLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (first8.byteLength < 8) throw invalid(file, "it is shorter than the 8-byte header length");
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const length = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (length > HEADER_LIMIT)
    throw invalid(file, `the header is ${length} bytes, over the ${HEADER_LIMIT}-byte cap`);
  if (8 + length > fileSize)
    throw invalid(file, `the header length ${length} runs past the end of the ${fileSize}-byte file`);
  return length;
}

/**
 * Parses and validates a safetensors JSON header: known dtypes, shapes of non-negative integers,
 * `data_offsets` whose length is shape product × dtype size, in order, not overlapping, covering
 * the data section exactly. Violations are `INVALID_SAFETENSORS` naming the tensor and the rule.
 */
export function parseHeader(
  json: Uint8Array,
  fileSize: number,
  file = "safetensors file",
): SafetensorsHeader {
  const dataOffset = 8 + json.byteLength;
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (cause) {
    throw new OciError("INVALID_SAFETENSORS", `Cannot read ${file}: the header is not valid JSON`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw invalid(file, "the header is not a JSON object");
  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (
        typeof value !== "object" ||
        value === null ||
        Array.isArray(value) ||
        Object.values(value).some((v) => typeof v !== "string")
      ) {
        throw invalid(file, "__metadata__ must map strings to strings");
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof entry !== "object" || entry === null) throw invalid(file, `tensor "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_SIZES, dtype)) {
      throw invalid(file, `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid(file, `tensor "${name}" has a shape that is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw invalid(file, `tensor "${name}" has no valid data_offsets [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw invalid(file, `tensor "${name}" ends (${end}) before it begins (${begin})`);
    const elements = (shape as number[]).reduce((n, d) => n * d, 1);
    const expected = elements * DTYPE_SIZES[dtype as Dtype];
    if (end - begin !== expected) {
      throw invalid(
        file,
        `tensor "${name}" holds ${end - begin} bytes but shape [${shape}] of ${dtype} needs ${expected}`,
      );
    }
    tensors.push({
      name,
      dtype: dtype as Dtype,
      shape: shape as number[],
      offset: dataOffset + begin,
      length: end - begin,
    });
  }
  tensors.sort((a, b) => a.offset - b.offset || a.length - b.length);
  let cursor = dataOffset;
  for (const t of tensors) {
    if (t.offset < cursor) throw invalid(file, `tensor "${t.name}" overlaps the tensor before it`);
    if (t.offset > cursor)
      throw invalid(file, `there is a gap of ${t.offset - cursor} bytes before tensor "${t.name}"`);
    cursor = t.offset + t.length;
  }
  if (cursor > fileSize) throw invalid(file, "tensor data runs past the end of the file");
  if (cursor < fileSize)
    throw invalid(file, `${fileSize - cursor} bytes after the last tensor belong to none`);
  return { dataOffset, metadata, tensors };
}

/** Reads a header by ranged reads: the first 8 bytes, then the JSON. */
export async function readHeader(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  fileSize: number,
  file: string,
): Promise<SafetensorsHeader> {
  const length = headerLength(await read(0, Math.min(8, fileSize)), fileSize, file);
  return parseHeader(await read(8, length), fileSize, file);
}
