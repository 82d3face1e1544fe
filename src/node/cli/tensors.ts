import { open, stat } from "node:fs/promises";
import { parseReference, remoteTensorIndex, type TensorEntry } from "../../index.js";
import { buildTensorIndex, type GgufMetadata, type GgufValue } from "../../internals.js";
import { isTensorFile } from "../../tensors/files.js";
import { defineCommand, UsageError } from "./command.js";
import { formatSize } from "./format.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";

const USAGE = `Usage: oci-model tensors <reference | file.safetensors|.bin|.pt|.npz|.gguf> [--json]

Lists a model's tensors (name, dtype, shape, bytes) from the safetensors headers (or a checkpoint's
zip directory and restricted-unpickled data.pkl, or a GGUF file's header) alone: for a
reference, only the header bytes of each shard are fetched (HTTP Range), no weights. For GGUF, the
dtype is the ggml type (Q4_K…) and a line per file gives its version, architecture and context length.
  --json   print { "tensors": [{ name, dtype, shape, bytes, file }], "gguf"?: [{ file, version,
           alignment, dataOffset, architecture, contextLength, metadata }] } on stdout (arrays in
           metadata as { type: "array", itemType, length })
  --plain-http, --username U --password-stdin, --timeout S, --proxy URL  as for inspect`;

/** A metadata value as JSON: 64-bit integers as numbers when exact, else strings; arrays by size. */
function jsonValue(value: GgufValue): unknown {
  if (typeof value === "bigint")
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  if (typeof value === "object") return { type: "array", itemType: value.itemType, length: value.length };
  return value;
}

function ggufJson(m: GgufMetadata) {
  return {
    file: m.file,
    version: m.version,
    alignment: m.alignment,
    dataOffset: m.dataOffset,
    architecture: m.architecture ?? null,
    contextLength: m.contextLength ?? null,
    metadata: Object.fromEntries([...m.entries].map(([k, v]) => [k, jsonValue(v)])),
  };
}

async function localIndex(path: string, gguf: Map<string, GgufMetadata>): Promise<Map<string, TensorEntry>> {
  const { size } = await stat(path);
  const file = await open(path, "r");
  try {
    return await buildTensorIndex(
      [
        {
          path,
          size,
          read: async (offset, length) => {
            const buffer = new Uint8Array(length);
            const { bytesRead } = await file.read(buffer, 0, length, offset);
            return buffer.subarray(0, bytesRead);
          },
        },
      ],
      undefined,
      gguf,
    );
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
    const gguf = new Map<string, GgufMetadata>();
    if (isTensorFile(target)) {
      index = await localIndex(target, gguf);
    } else {
      const ref = parseReference(target);
      index = await remoteTensorIndex(ref, {
        ...(await clientOptions(values, ref.registry, io)),
        ggufMetadata: gguf,
      });
    }
    const tensors = [...index.values()].map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      bytes: t.length,
      file: t.file,
    }));
    if (values.json) {
      const files = [...gguf.values()].map(ggufJson);
      io.stdout(`${JSON.stringify({ tensors, ...(files.length ? { gguf: files } : {}) })}\n`);
      return 0;
    }
    for (const m of gguf.values()) {
      const facts = [
        `GGUF v${m.version}`,
        m.architecture ?? "no general.architecture",
        ...(m.contextLength !== undefined ? [`context length ${m.contextLength}`] : []),
        `${m.entries.size} key/values`,
        `data at ${m.dataOffset} (alignment ${m.alignment})`,
      ];
      io.stdout(`${m.file}: ${facts.join(", ")}\n`);
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
