import { listModels } from "../../index.js";
import { defineCommand } from "./command.js";
import { formatSize } from "./format.js";
import { openExistingStore, STORE_FLAG } from "./store-flag.js";

/** `oci-model ls`: the models in the store, one a line or one JSON array. */
export const lsCommand = defineCommand({
  synopsis: "",
  summary: "list the models in the store",
  usage: "Usage: oci-model ls [--store DIR] [--json]\n\nLists the models in the store.",
  options: { ...STORE_FLAG, json: { type: "boolean" } },
  async run(values, _positionals, io) {
    const models = await listModels(await openExistingStore(values.store, io, "list the models"));
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
  },
});
