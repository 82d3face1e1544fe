import { defineCommand } from "./command.js";
import { formatSize } from "./format.js";
import { openExistingStore, STORE_FLAG } from "./store-flag.js";

/** `oci-model gc`: frees the blobs no model needs and stale interrupted downloads. */
export const gcCommand = defineCommand({
  synopsis: "",
  summary: "free blobs no model needs",
  usage:
    "Usage: oci-model gc [--store DIR] [--json]\n\nFrees blobs no model needs and interrupted downloads older than an hour.",
  options: { ...STORE_FLAG, json: { type: "boolean" } },
  async run(values, _positionals, io) {
    const result = await (await openExistingStore(values.store, io, "collect garbage")).gc();
    if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
    else
      io.stdout(
        `freed ${formatSize(result.freedBytes)} (${result.removedBlobs.length} blobs, ${result.removedIngests.length} interrupted downloads)\n`,
      );
    return 0;
  },
});
