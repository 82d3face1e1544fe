import { mkdir, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  createRegistryClient,
  type ManifestResult,
  type Model,
  OciError,
  parseReference,
  pullModel,
  type RegistryClient,
} from "../../index.js";
import { defineCommand, UsageError } from "./command.js";
import { pullReporter } from "./progress.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";
import { openStore, STORE_FLAG, storeDir } from "./store-flag.js";

const USAGE = `Usage: oci-model pull <reference> [--store DIR] [--output DIR] [--config-only] [--keep-archives] [--proxy URL] [--concurrency N] [--connections N] [--timeout S] [--json]

Pulls a model into the store (an OCI layout; default $XDG_CACHE_HOME/oci-model or ~/.cache/oci-model),
verifying every byte and resuming interrupted downloads.
  --output DIR     also write the model's files under their names into DIR
  --config-only    manifest, config and config files only, no weights
  --keep-archives  keep compressed layers once their files are stored (to push the model again)
  --concurrency N  layers at a time (default 4)
  --connections N  range requests at a time for one large blob (default 8, 1 from a registry on
                   loopback; 1: each blob in one request)
  --json           print one JSON summary on stdout; progress goes to stderr as NDJSON, one
                   {"type","message","total","current","layer":{"id","size","current","name"},"mode"}
                   a line (Docker Model Runner's progress shape)
  --plain-http, --username U --password-stdin, --timeout S, --proxy URL  as for inspect`;

async function writeFiles(model: Model, output: string): Promise<void> {
  for (const path of model.files.keys()) {
    const target = join(output, path);
    await mkdir(dirname(target), { recursive: true });
    const file = await open(target, "w");
    try {
      for await (const chunk of await model.file(path).stream()) await file.write(chunk);
    } finally {
      await file.close();
    }
  }
}

/** A count flag's value: a whole number above 0, or `undefined` where the flag is not given. */
function count(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new OciError("INVALID_ARGUMENT", `Cannot pull: ${flag} ${value} is not a whole number above 0`);
  return n;
}

/** The client, telling `seen` each manifest it fetches (the progress names layers from it). */
function watchManifests(client: RegistryClient, seen: (result: ManifestResult) => void): RegistryClient {
  const getManifest = client.getManifest.bind(client);
  client.getManifest = (async (...args: Parameters<typeof getManifest>) => {
    const result = await getManifest(...args);
    seen(result);
    return result;
  }) as RegistryClient["getManifest"];
  return client;
}

/** `oci-model pull`: a model into the store, verified, resumable, with progress on stderr. */
export const pullCommand = defineCommand({
  synopsis: "<reference>",
  summary: "pull a model into the store, verified and resumable",
  usage: USAGE,
  options: {
    ...REGISTRY_FLAGS,
    ...STORE_FLAG,
    output: { type: "string" },
    "config-only": { type: "boolean" },
    "keep-archives": { type: "boolean" },
    concurrency: { type: "string" },
    connections: { type: "string" },
    json: { type: "boolean" },
  },
  allowPositionals: true,
  async run(values, positionals, io) {
    if (positionals.length !== 1) throw new UsageError("Cannot pull: give one reference");
    const ref = parseReference(positionals[0] as string);
    const concurrency = count(values.concurrency, "--concurrency");
    const connections = count(values.connections, "--connections");
    const reporter = pullReporter(io, { json: values.json === true });
    // Ctrl-C aborts the pull, which ends with ABORTED and leaves what it fetched to resume from
    const controller = new AbortController();
    const stopListening = io.onSignal(["SIGINT"], () => controller.abort());
    let model: Model;
    const started = Date.now();
    let fetched = 0;
    let reused = 0;
    try {
      const options = await clientOptions(values, ref.registry, io);
      if (connections !== undefined) options.ranges = { connections };
      model = await pullModel(ref, {
        ...options,
        client: watchManifests(createRegistryClient(options), reporter.manifest),
        store: openStore(values.store, io),
        weights: !values["config-only"],
        keepArchives: values["keep-archives"] === true,
        concurrency: concurrency ?? 4,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.type === "done") {
            fetched = event.fetchedBytes;
            reused = event.reusedBytes;
          }
          reporter.onEvent(event);
        },
      });
    } catch (error) {
      reporter.fail(error);
      throw error;
    } finally {
      reporter.stop();
      stopListening();
    }
    if (values.output) await writeFiles(model, values.output);
    if (values.json) {
      // A file served in place from a tar layer has no digest of its own: its layer and offset say where it is.
      const files = [...model.files.values()].map(({ path, digest, size, weight, layer }) => ({
        path,
        ...(digest ? { digest } : {}),
        size,
        weight,
        ...(layer ? { layer } : {}),
      }));
      const summary = {
        reference: model.reference,
        digest: model.digest,
        format: model.format,
        complete: model.complete,
        store: storeDir(values.store, io),
        files,
        fetchedBytes: fetched,
        reusedBytes: reused,
        seconds: (Date.now() - started) / 1000,
      };
      io.stdout(`${JSON.stringify(summary)}\n`);
    } else {
      io.stdout(`${model.reference} ${model.digest}\n`);
    }
    return 0;
  },
});
