import { tensorFileKind } from "./files.js";
import { invalidCheckpoint } from "./invalid.js";
import { parseNpyHeader } from "./npy.js";
import { readTorchPickle } from "./pickle.js";
import { DTYPE_SIZES } from "./safetensors.js";
import type { TensorEntry, TensorFile } from "./types.js";
import { readZip } from "./zip.js";

/** The largest data.pkl read: a state dict of a million tensors pickles to some 100 MiB. */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

function contiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if ((shape[i] as number) !== 1 && stride[i] !== expected) return false;
    expected *= shape[i] as number;
  }
  return stride.length === shape.length;
}

/**
 * Indexes the tensors of a zip-container checkpoint (PyTorch `.bin`/`.pt`/`.pth`, NumPy `.npz`) by
 * random access. Stored entries become byte ranges of the file (tensors stream without copying);
 * deflated ones name their `member`, and only the head of each is inflated here.
 */
export async function indexCheckpoint(file: TensorFile): Promise<TensorEntry[]> {
  const what = file.path;
  const members = await readZip((o, l) => file.read(o, l), file.size, what);
  const out: TensorEntry[] = [];
  if (tensorFileKind(file.path) === "npz") {
    for (const member of members.filter((m) => m.name.endsWith(".npy"))) {
      const stored = member.method === 0;
      const npy = parseNpyHeader(
        await member.read(0, Math.min(member.size, 64 * 1024)),
        `${what}:${member.name}`,
      );
      const length = npy.shape.reduce((n, d) => n * d, 1) * DTYPE_SIZES[npy.dtype];
      if (!isCount(length) || npy.dataOffset + length > member.size)
        throw invalidCheckpoint(`${what}:${member.name}`, "its data runs past the entry");
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
    throw invalidCheckpoint(what, "it holds no data.pkl (is it a legacy, non-zip torch.save file?)");
  if (pickle.size > MAX_PICKLE_BYTES)
    throw invalidCheckpoint(
      what,
      `its data.pkl is ${pickle.size} bytes, over the ${MAX_PICKLE_BYTES}-byte limit`,
    );
  const prefix = pickle.name.slice(0, -"data.pkl".length);
  const byName = new Map(members.map((m) => [m.name, m]));
  for (const [name, ref] of readTorchPickle(await pickle.read())) {
    const tensor = (reason: string) => invalidCheckpoint(what, `tensor "${name}" ${reason}`);
    const member = byName.get(`${prefix}data/${ref.storage.key}`);
    if (!member) throw tensor(`refers to a missing storage ${ref.storage.key}`);
    if (!ref.shape.every(isCount) || !ref.stride.every(isCount))
      throw tensor("has a shape or stride that is not a list of sizes");
    if (!contiguous(ref.shape, ref.stride))
      throw tensor(`is not contiguous (stride [${ref.stride}]); save it with .contiguous()`);
    if (!isCount(ref.offset)) throw tensor(`starts at ${ref.offset}, outside its storage`);
    if (!isCount(ref.storage.size)) throw tensor(`has a storage of ${ref.storage.size} elements`);
    const size = DTYPE_SIZES[ref.storage.dtype];
    const length = ref.shape.reduce((n, d) => n * d, 1) * size;
    const start = ref.offset * size;
    // The storage's data is its member; the pickle also says how many elements it holds.
    if (!isCount(start + length) || start + length > Math.min(member.size, ref.storage.size * size))
      throw tensor("runs past its storage");
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
