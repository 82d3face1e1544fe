import { parseArgs } from "node:util";
import { listModels, OciError, removeModel } from "../../index.js";
import { formatSize } from "./format.js";
import type { CliIo } from "./options.js";
import { openStore, STORE_FLAG } from "./store-flag.js";

export const LS_USAGE = "Usage: oci-model ls [--store DIR] [--json]\n\nLists the models in the store.";
export const RM_USAGE =
  "Usage: oci-model rm <reference> [--store DIR]\n\nForgets a model and frees the blobs no other model needs.";
export const GC_USAGE =
  "Usage: oci-model gc [--store DIR] [--json]\n\nFrees blobs no model needs and interrupted downloads older than an hour.";

export const VERIFY_USAGE =
  "Usage: oci-model verify [--store DIR] [--json]\n\nRe-hashes every blob in the store and removes any whose bytes no longer match its digest\n(pull again to fetch them). Exits 1 when it removed something.";

function usage(io: CliIo, text: string): number {
  io.stdout(`${text}\n`);
  return 0;
}

const options = { ...STORE_FLAG, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;

export async function lsCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options });
  if (values.help) return usage(io, LS_USAGE);
  const models = await listModels(openStore(values.store, io));
  if (values.json) {
    const rows = models.map((m) => ({
      reference: m.record.reference,
      names: m.names,
      digest: m.record.digest,
      format: m.record.format,
      size: m.size,
      files: m.record.files.length,
      complete: m.record.pending.length === 0,
      pulledAt: m.record.pulledAt,
    }));
    io.stdout(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  for (const m of models) {
    const partial = m.record.pending.length ? " (config only)" : "";
    io.stdout(
      `${m.record.reference}  ${m.record.digest.slice(0, 19)}  ${m.record.format}  ${formatSize(m.size)}${partial}\n`,
    );
  }
  return 0;
}

export async function rmCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true });
  if (values.help) return usage(io, RM_USAGE);
  if (positionals.length !== 1)
    throw new OciError("INVALID_ARGUMENT", `Cannot remove: give one reference\n${RM_USAGE}`);
  const removed = await removeModel(positionals[0] as string, { store: openStore(values.store, io) });
  if (!removed) throw new OciError("NOT_FOUND", `Cannot remove ${positionals[0]}: it is not in the store`);
  return 0;
}

export async function gcCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options });
  if (values.help) return usage(io, GC_USAGE);
  const result = await openStore(values.store, io).gc();
  if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
  else
    io.stdout(
      `freed ${formatSize(result.freedBytes)} (${result.removedBlobs.length} blobs, ${result.removedIngests.length} interrupted downloads)\n`,
    );
  return 0;
}

export async function verifyCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options });
  if (values.help) return usage(io, VERIFY_USAGE);
  const result = await openStore(values.store, io).verify();
  if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
  else {
    for (const { digest, reason } of result.removed) io.stdout(`removed ${digest}: ${reason}\n`);
    io.stdout(
      `checked ${result.checked} blobs (${formatSize(result.bytes)}): ${
        result.removed.length
          ? `${result.removed.length} damaged, removed; pull the models again`
          : "all match"
      }\n`,
    );
  }
  return result.removed.length ? 1 : 0;
}
