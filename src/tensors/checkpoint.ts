import { OciError } from "../errors.js";
import { parseNpyHeader } from "./npy.js";
import { readTorchPickle } from "./pickle.js";
import { DTYPE_SIZES } from "./safetensors.js";
import type { TensorEntry, TensorFile } from "./tensor-index.js";
import { readZip } from "./zip.js";

/** Zip-container checkpoints: PyTorch `.bin`/`.pt`/`.pth`, NumPy `.npz`. */
export function isCheckpointPath(path: string): boolean {
  return /\.(bin|pt|pth|npz)$/i.test(path);
}

function contiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if ((shape[i] as number) !== 1 && stride[i] !== expected) return false;
    expected *= shape[i] as number;
  }
  return stride.length === shape.length;
}

/**
 * Indexes the tensors of a zip-container checkpoint by random access. Stored entries become byte
 * ranges of the file (tensors stream without copying); deflated ones name their `member`.
 */
export async function indexCheckpoint(file: TensorFile): Promise<TensorEntry[]> {
  const what = file.path;
  const members = await readZip((o, l) => file.read(o, l), file.size, what);
  const out: TensorEntry[] = [];
  if (file.path.toLowerCase().endsWith(".npz")) {
    for (const member of members.filter((m) => m.name.endsWith(".npy"))) {
      const stored = member.method === 0;
      const head = stored
        ? await file.read(member.dataOffset, Math.min(member.size, 64 * 1024))
        : await member.read();
      const npy = parseNpyHeader(head, `${what}:${member.name}`);
      const length = npy.shape.reduce((n, d) => n * d, 1) * DTYPE_SIZES[npy.dtype];
      if (npy.dataOffset + length > member.size)
        throw new OciError(
          "INVALID_CHECKPOINT",
          `Cannot read ${what}:${member.name}: its data runs past the entry`,
        );
      const name = member.name.slice(0, -4);
      out.push({
        name,
        file: file.path,
        dtype: npy.dtype,
        shape: npy.shape,
        offset: stored ? member.dataOffset + npy.dataOffset : npy.dataOffset,
        length,
        ...(stored ? {} : { member: member.name }),
      });
    }
    return out;
  }
  const pickle = members.find((m) => m.name.endsWith("/data.pkl") || m.name === "data.pkl");
  if (!pickle)
    throw new OciError(
      "INVALID_CHECKPOINT",
      `Cannot read ${what}: it holds no data.pkl (is it a legacy, non-zip torch.save file?)`,
    );
  const prefix = pickle.name.slice(0, -"data.pkl".length);
  const tensors = readTorchPickle(await pickle.read());
  for (const [name, ref] of tensors) {
    const member = members.find((m) => m.name === `${prefix}data/${ref.storage.key}`);
    if (!member)
      throw new OciError(
        "INVALID_CHECKPOINT",
        `Cannot read ${what}: tensor "${name}" refers to a missing storage ${ref.storage.key}`,
      );
    if (!contiguous(ref.shape, ref.stride)) {
      throw new OciError(
        "INVALID_CHECKPOINT",
        `Cannot read ${what}: tensor "${name}" is not contiguous (stride [${ref.stride}]); save it with .contiguous()`,
      );
    }
    const size = DTYPE_SIZES[ref.storage.dtype];
    const length = ref.shape.reduce((n, d) => n * d, 1) * size;
    const start = ref.offset * size;
    if (start + length > member.size)
      throw new OciError("INVALID_CHECKPOINT", `Cannot read ${what}: tensor "${name}" runs past its storage`);
    const stored = member.method === 0;
    out.push({
      name,
      file: file.path,
      dtype: ref.storage.dtype,
      shape: ref.shape,
      offset: stored ? member.dataOffset + start : start,
      length,
      ...(stored ? {} : { member: member.name }),
    });
  }
  return out.sort((a, b) => a.offset - b.offset);
}
