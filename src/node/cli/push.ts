import { join } from "node:path";
import { parseReference, pushModel } from "../../index.js";
import { createFsStore } from "../fs-store.js";
import { defineCommand, UsageError } from "./command.js";
import { mustExist, splitLayout } from "./paths.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";

/** `oci-model push`: a model from an OCI layout to a registry, skipping the blobs it has. */
export const pushCommand = defineCommand({
  synopsis: "<dir:tag> <ref>",
  summary: "push a model from an OCI layout to a registry",
  usage: `Usage: oci-model push <layout-dir:tag> <reference>

Pushes what an OCI layout holds under a name to a registry, skipping blobs the registry has.`,
  options: REGISTRY_FLAGS,
  allowPositionals: true,
  async run(values, positionals, io) {
    const [layout, target] = positionals;
    if (!layout || !target || positionals.length !== 2)
      throw new UsageError("Cannot push: give a layout and a reference");
    const [dir, tag] = splitLayout(layout);
    const ref = parseReference(target);
    // A missing layout is refused before the fs store would create an empty one there.
    await mustExist(join(dir, "index.json"), "an OCI layout has oci-layout and index.json", `push ${layout}`);
    const store = createFsStore(dir);
    const result = await pushModel(store, tag, ref, await clientOptions(values, ref.registry, io));
    io.stderr(
      `pushed ${result.digest}: ${result.uploaded} blobs uploaded, ${result.skipped} already there, ${result.mounted} mounted\n`,
    );
    io.stdout(`${result.digest}\n`);
    return 0;
  },
});
