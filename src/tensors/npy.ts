import { invalidCheckpoint } from "./invalid.js";
import type { Dtype } from "./safetensors.js";

const DTYPES: Record<string, Dtype> = {
  "<f8": "F64",
  "<f4": "F32",
  "<f2": "F16",
  "<i8": "I64",
  "<i4": "I32",
  "<i2": "I16",
  "|i1": "I8",
  "<u8": "U64",
  "<u4": "U32",
  "<u2": "U16",
  "|u1": "U8",
  "|b1": "BOOL",
};

export interface NpyHeader {
  dtype: Dtype;
  shape: number[];
  /** Where the data starts, from the start of the .npy. */
  dataOffset: number;
}

/** Parses a NumPy `.npy` header (format 1–3): little-endian numeric dtypes, C order. */
export function parseNpyHeader(bytes: Uint8Array, what: string): NpyHeader {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.byteLength < 10 || magic.some((b, i) => bytes[i] !== b))
    throw invalidCheckpoint(what, "it is not a .npy file");
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [length, start] = major === 1 ? [view.getUint16(8, true), 10] : [view.getUint32(8, true), 12];
  if (start + length > bytes.byteLength) throw invalidCheckpoint(what, "its header runs past the bytes read");
  const text = new TextDecoder().decode(bytes.subarray(start, start + length));
  const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw invalidCheckpoint(what, "its header is malformed");
  const dtype = DTYPES[descr];
  if (!dtype)
    throw invalidCheckpoint(what, `dtype ${descr} is not supported (little-endian numeric dtypes only)`);
  if (fortran === "True") throw invalidCheckpoint(what, "it is in Fortran order; save it C-contiguous");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw invalidCheckpoint(what, "its shape is malformed");
  return { dtype, shape, dataOffset: start + length };
}
