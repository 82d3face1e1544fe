import {
  createMemoryStore,
  OciError,
  type PackFormat,
  packModel,
  parseReference,
  pushModel,
  type Store,
} from "../../index.js";
import { createFsStore } from "../fs-store.js";
import { createNodeHasher } from "../hasher.js";
import { packFilesFromDirectory } from "../pack-files.js";
import { defineCommand, UsageError } from "./command.js";
import { mustExist, splitLayout } from "./paths.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";

const USAGE = `Usage: oci-model pack <dir> [<reference>] [--format docker-v0.1|docker-v0.2|modelpack] [--layout DIR:TAG] [--json]

Packs a model folder into an OCI artifact: pushes it to <reference>, writes it to an OCI layout, or both.
  --format   docker-v0.1 (default: safetensors layers + a vLLM config tar), docker-v0.2 (a layer per file), modelpack
  --layout   write to the OCI layout DIR under the name TAG (skopeo copy oci:DIR:TAG reads it)
  --json     print { digest, mediaType, artifactType, layers } on stdout
  --plain-http, --username U --password-stdin, --timeout S, --proxy URL  as for inspect`;

const FORMATS = ["docker-v0.1", "docker-v0.2", "modelpack"];

/** `oci-model pack`: a model folder into an artifact, pushed to a registry, written to a layout, or both. */
export const packCommand = defineCommand({
  synopsis: "<dir> [ref]",
  summary: "pack a model folder (docker-v0.1, docker-v0.2, modelpack); push it or write a layout",
  usage: USAGE,
  options: {
    ...REGISTRY_FLAGS,
    format: { type: "string" },
    layout: { type: "string" },
    json: { type: "boolean" },
  },
  allowPositionals: true,
  async run(values, positionals, io) {
    const [dir, target] = positionals;
    if (!dir || positionals.length > 2 || (!target && !values.layout))
      throw new UsageError("Cannot pack: give a folder and a reference, --layout DIR:TAG, or both");
    const format = (values.format ?? "docker-v0.1") as PackFormat;
    if (!FORMATS.includes(format))
      throw new OciError("INVALID_ARGUMENT", `Cannot pack: --format must be one of ${FORMATS.join(", ")}`);
    const [layoutDir, tag] = values.layout ? splitLayout(values.layout) : [undefined, undefined];
    await mustExist(dir, "the model folder to pack", `pack ${dir}`, true);
    // The reference and the registry flags are checked before anything is packed: a bad one must
    // leave no layout behind.
    const ref = target ? parseReference(target) : undefined;
    const options = ref ? await clientOptions(values, ref.registry, io) : undefined;
    const store: Store = layoutDir
      ? createFsStore(layoutDir)
      : createMemoryStore({ createHasher: createNodeHasher });
    const packed = await packModel(await packFilesFromDirectory(dir), {
      format,
      store,
      createHasher: createNodeHasher,
      ...(tag ? { tag } : {}),
    });
    if (ref && options) await pushModel(store, packed.descriptor, ref, options);
    if (values.json) {
      const { digest, mediaType, artifactType } = packed.descriptor;
      io.stdout(
        `${JSON.stringify({ digest, mediaType, artifactType: artifactType ?? null, format, layers: packed.manifest.layers })}\n`,
      );
    } else {
      io.stdout(`${packed.descriptor.digest}\n`);
    }
    return 0;
  },
});
