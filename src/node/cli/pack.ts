import { stat } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
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
import { serveLayout } from "../serve.js";
import { type CliIo, clientOptions, REGISTRY_FLAGS } from "./options.js";

export const PACK_USAGE = `Usage: oci-model pack <dir> [<reference>] [--format docker-v0.1|docker-v0.2|modelpack] [--layout DIR:TAG] [--json]

Packs a model folder into an OCI artifact: pushes it to <reference>, writes it to an OCI layout, or both.
  --format   docker-v0.1 (default: safetensors layers + a vLLM config tar), docker-v0.2 (a layer per file), modelpack
  --layout   write to the OCI layout DIR under the name TAG (skopeo copy oci:DIR:TAG reads it)
  --json     print { digest, mediaType, artifactType, layers } on stdout
  --plain-http, --username U --password-stdin, --timeout S, --proxy URL  as for inspect`;

export const PUSH_USAGE = `Usage: oci-model push <layout-dir:tag> <reference>

Pushes what an OCI layout holds under a name to a registry, skipping blobs the registry has.`;

export const SERVE_USAGE = `Usage: oci-model serve <layout-dir> [--port 5050] [--host 127.0.0.1]

Serves an OCI layout read-only over the distribution API (manifests by tag or digest, blobs with
Range, tags/list); every repository name maps onto the layout. For local use, not a registry.`;

const FORMATS = ["docker-v0.1", "docker-v0.2", "modelpack"];

/** A path the user named must be there: a typo is NOT_FOUND, never an empty store created there. */
async function mustExist(path: string, what: string, action: string, folder = false): Promise<void> {
  const found = await stat(path).catch(() => undefined);
  if (!found) throw new OciError("NOT_FOUND", `Cannot ${action}: ${path} does not exist (${what})`);
  if (folder && !found.isDirectory())
    throw new OciError("INVALID_ARGUMENT", `Cannot ${action}: ${path} is not a folder (${what})`);
}

function splitLayout(value: string): [string, string] {
  const colon = value.lastIndexOf(":");
  if (colon <= 0 || colon === value.length - 1) {
    throw new OciError("INVALID_ARGUMENT", `Cannot use layout "${value}": write it as DIR:TAG`);
  }
  return [value.slice(0, colon), value.slice(colon + 1)];
}

export async function packCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...REGISTRY_FLAGS,
      format: { type: "string" },
      layout: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout(`${PACK_USAGE}\n`);
    return 0;
  }
  const [dir, target] = positionals;
  if (!dir || positionals.length > 2 || (!target && !values.layout)) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: give a folder and a reference, --layout DIR:TAG, or both\n${PACK_USAGE}`,
    );
  }
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
}

export async function pushCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...REGISTRY_FLAGS, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    io.stdout(`${PUSH_USAGE}\n`);
    return 0;
  }
  const [layout, target] = positionals;
  if (!layout || !target || positionals.length !== 2)
    throw new OciError("INVALID_ARGUMENT", `Cannot push: give a layout and a reference\n${PUSH_USAGE}`);
  const [dir, tag] = splitLayout(layout);
  const ref = parseReference(target);
  // A missing layout is refused before the fs store would create an empty one there.
  await mustExist(join(dir, "index.json"), "an OCI layout has oci-layout and index.json", `push ${layout}`);
  const result = await pushModel(createFsStore(dir), tag, ref, await clientOptions(values, ref.registry, io));
  io.stderr(
    `pushed ${result.digest}: ${result.uploaded} blobs uploaded, ${result.skipped} already there, ${result.mounted} mounted\n`,
  );
  io.stdout(`${result.digest}\n`);
  return 0;
}

export async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: "string" }, host: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    io.stdout(`${SERVE_USAGE}\n`);
    return 0;
  }
  const [dir] = positionals;
  if (!dir || positionals.length !== 1)
    throw new OciError("INVALID_ARGUMENT", `Cannot serve: give one layout folder\n${SERVE_USAGE}`);
  const port = Number(values.port ?? 5050);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new OciError("INVALID_ARGUMENT", `Cannot serve: --port ${values.port} is not a port`);
  const server = await serveLayout(dir, { port, host: values.host ?? "127.0.0.1" });
  io.stderr(`oci-model serve: ${dir} read-only on ${server.url} (local use only; not a registry)\n`);
  io.stdout(`${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return 0;
}
