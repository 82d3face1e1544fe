import { open, stat } from "node:fs/promises";
import { parseReference, remoteTensorIndex, type TensorEntry } from "../../index.js";
import { buildTensorIndex } from "../../internals.js";
import { isTensorFile } from "../../tensors/files.js";
import { defineCommand, UsageError } from "./command.js";
import { formatSize } from "./format.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";

const USAGE = `Usage: oci-model tensors <reference | file.safetensors|.bin|.pt|.npz> [--json]

Lists a model's tensors (name, dtype, shape, bytes) from the safetensors headers (or a checkpoint's
zip directory and restricted-unpickled data.pkl) alone: for a
reference, only the header bytes of each shard are fetched (HTTP Range), no weights.
  --json   print { "tensors": [{ name, dtype, shape, bytes, file }] } on stdout
  --plain-http, --username U --password-stdin, --timeout S, --proxy URL  as for inspect`;

async function localIndex(path: string): Promise<Map<string, TensorEntry>> {
  const { size } = await stat(path);
  const file = await open(path, "r");
  try {
    return await buildTensorIndex([
      {
        path,
        size,
        read: async (offset, length) => {
          const buffer = new Uint8Array(length);
          const { bytesRead } = await file.read(buffer, 0, length, offset);
          return buffer.subarray(0, bytesRead);
        },
      },
    ]);
  } finally {
    await file.close();
  }
}

/** `oci-model tensors`: the tensors of a model or a local file, from the headers alone. */
export const tensorsCommand = defineCommand({
  synopsis: "<ref | file>",
  summary: "list tensors from the safetensors headers (no weights downloaded)",
  usage: USAGE,
  options: { ...REGISTRY_FLAGS, json: { type: "boolean" } },
  allowPositionals: true,
  async run(values, positionals, io) {
    const target = positionals[0];
    if (positionals.length !== 1 || target === undefined)
      throw new UsageError("Cannot list tensors: give one reference or file");
    let index: Map<string, TensorEntry>;
    if (isTensorFile(target)) {
      index = await localIndex(target);
    } else {
      const ref = parseReference(target);
      index = await remoteTensorIndex(ref, await clientOptions(values, ref.registry, io));
    }
    const tensors = [...index.values()].map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      bytes: t.length,
      file: t.file,
    }));
    if (values.json) {
      io.stdout(`${JSON.stringify({ tensors })}\n`);
      return 0;
    }
    const width = Math.max(4, ...tensors.map((t) => t.name.length));
    for (const t of tensors)
      io.stdout(
        `${t.name.padEnd(width)}  ${t.dtype.padEnd(7)}  [${t.shape.join(", ")}]  ${formatSize(t.bytes)}\n`,
      );
    io.stdout(`${tensors.length} tensors, ${formatSize(tensors.reduce((n, t) => n + t.bytes, 0))}\n`);
    return 0;
  },
});
