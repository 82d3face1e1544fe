import { defineCommand } from "./command.js";
import { formatSize } from "./format.js";
import { openExistingStore, STORE_FLAG } from "./store-flag.js";

/** `oci-model verify`: re-hashes the store's blobs and removes the damaged ones; exit 1 if any. */
export const verifyCommand = defineCommand({
  synopsis: "",
  summary: "re-hash every blob in the store; remove (and list) any that changed",
  usage:
    "Usage: oci-model verify [--store DIR] [--json]\n\nRe-hashes every blob in the store and removes any whose bytes no longer match its digest\n(pull again to fetch them). Exits 1 when it removed something.",
  options: { ...STORE_FLAG, json: { type: "boolean" } },
  async run(values, _positionals, io) {
    const result = await (await openExistingStore(values.store, io, "verify the store")).verify();
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
  },
});
