import { stat } from "node:fs/promises";
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
import { packFileFromPath, packFilesFromDirectory, packFilesFromGguf } from "../pack-files.js";
import { defineCommand, UsageError } from "./command.js";
import { mustExist, splitLayout } from "./paths.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";

const USAGE = `Usage: oci-model pack <dir | file.gguf> [<reference>] [--format docker-v0.1|docker-v0.2|modelpack] [--mmproj FILE] [--chat-template FILE] [--license FILE]... [--context-size N] [--layout DIR:TAG] [--json]

Packs a model folder into an OCI artifact: pushes it to <reference>, writes it to an OCI layout, or both.
  --format         docker-v0.1 (default: safetensors layers + a vLLM config tar; GGUF as \`docker model package\` packs it),
                   docker-v0.2 (a layer per file), modelpack
  --mmproj         GGUF only: the multimodal projector (default: the folder's *mmproj*.gguf)
  --chat-template  GGUF only: the Jinja chat template (default: the folder's *.jinja)
  --license        GGUF only: a license file, repeatable (default: the folder's LICENSE* files)
  --context-size   GGUF only: the context size in tokens (default: the GGUF file's context length)
  --layout         write to the OCI layout DIR under the name TAG (skopeo copy oci:DIR:TAG reads it)
  --json           print { digest, mediaType, artifactType, layers } on stdout
  --plain-http, --username U --password-stdin, --timeout S, --proxy URL  as for inspect

A file.gguf packs that model (every part of a split model named <name>-00001-of-0000N.gguf) without
the rest of its folder.`;

const FORMATS = ["docker-v0.1", "docker-v0.2", "modelpack"];

/** `oci-model pack`: a model folder into an artifact, pushed to a registry, written to a layout, or both. */
export const packCommand = defineCommand({
  synopsis: "<dir> [ref]",
  summary: "pack a model folder (docker-v0.1, docker-v0.2, modelpack); push it or write a layout",
  usage: USAGE,
  options: {
    ...REGISTRY_FLAGS,
    format: { type: "string" },
    mmproj: { type: "string" },
    "chat-template": { type: "string" },
    license: { type: "string", short: "l", multiple: true },
    "context-size": { type: "string" },
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
    const contextSize = values["context-size"];
    if (contextSize !== undefined && !/^[0-9]+$/.test(contextSize))
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot pack: --context-size must be a whole number of tokens, not "${contextSize}"`,
      );
    const ggufFile = /\.gguf$/i.test(dir) && (await stat(dir).catch(() => undefined))?.isFile();
    if (!ggufFile) await mustExist(dir, "the model folder to pack", `pack ${dir}`, true);
    const input = ggufFile ? await packFilesFromGguf(dir) : await packFilesFromDirectory(dir);
    const extras = {
      ...(values.mmproj ? { mmproj: await packFileFromPath(values.mmproj, "--mmproj") } : {}),
      ...(values["chat-template"]
        ? { chatTemplate: await packFileFromPath(values["chat-template"], "--chat-template") }
        : {}),
      ...(values.license
        ? { licenses: await Promise.all(values.license.map((l) => packFileFromPath(l, "--license"))) }
        : {}),
      ...(contextSize !== undefined ? { contextSize: Number(contextSize) } : {}),
    };
    // The reference and the registry flags are checked before anything is packed: a bad one must
    // leave no layout behind.
    const ref = target ? parseReference(target) : undefined;
    const options = ref ? await clientOptions(values, ref.registry, io) : undefined;
    const store: Store = layoutDir
      ? createFsStore(layoutDir)
      : createMemoryStore({ createHasher: createNodeHasher });
    const packed = await packModel(input, {
      format,
      store,
      createHasher: createNodeHasher,
      ...extras,
      ...(tag ? { tag } : {}),
    });
    if (packed.omitted?.length)
      io.stderr(
        `oci-model pack: left out ${packed.omitted.join(", ")}: a GGUF model in Docker Model Runner's shape carries only the weights, a projector, a chat template and licenses\n`,
      );
    if (ref && options) await pushModel(store, packed.descriptor, ref, options);
    if (values.json) {
      const { digest, mediaType, artifactType } = packed.descriptor;
      io.stdout(
        `${JSON.stringify({ digest, mediaType, artifactType: artifactType ?? null, format, layers: packed.manifest.layers, ...(packed.omitted ? { omitted: packed.omitted } : {}) })}\n`,
      );
    } else {
      io.stdout(`${packed.descriptor.digest}\n`);
    }
    return 0;
  },
});
