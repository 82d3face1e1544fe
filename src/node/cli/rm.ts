import { OciError, removeModel } from "../../index.js";
import { defineCommand, UsageError } from "./command.js";
import { openExistingStore, STORE_FLAG } from "./store-flag.js";

/** `oci-model rm`: forgets a model and frees the blobs no other model needs. */
export const rmCommand = defineCommand({
  synopsis: "<reference>",
  summary: "forget a model and free what no other model needs",
  usage:
    "Usage: oci-model rm <reference> [--store DIR]\n\nForgets a model and frees the blobs no other model needs.",
  // --json is taken, as by the other store commands, though rm prints nothing
  options: { ...STORE_FLAG, json: { type: "boolean" } },
  allowPositionals: true,
  async run(values, positionals, io) {
    const [reference] = positionals;
    if (reference === undefined || positionals.length !== 1)
      throw new UsageError("Cannot remove: give one reference");
    const removed = await removeModel(reference, {
      store: await openExistingStore(values.store, io, `remove ${reference}`),
    });
    if (!removed) throw new OciError("NOT_FOUND", `Cannot remove ${reference}: it is not in the store`);
    return 0;
  },
});
