import { packTar } from "modern-tar";
import { safeEntryPath } from "../archive/tar.js";
import { type CreateHasher, digestStream } from "../digest/hasher.js";
import { createDefaultHasher } from "../digest/hashers.js";
import { OciError } from "../errors.js";
import type { Descriptor, ImageManifest } from "../oci/manifest.js";
import { MediaType, ModelMediaType } from "../oci/media-types.js";
import { pushBytes } from "../store/bytes.js";
import type { Store } from "../store/types.js";
import { readAll } from "../streams.js";
import { isWeightPath, tensorFileKind } from "../tensors/files.js";
import { readHeader, type SafetensorsHeader } from "../tensors/safetensors.js";
import { CONFIG_JSON_LIMIT } from "./model.js";

/** A file to pack: its path in the model folder and a way to read it (more than once). */
export interface PackFile {
  /** Its path in the model folder, `/`-separated and relative (`config.json`, `weights/model.safetensors`). */
  path: string;
  /** Its length in bytes. */
  size: number;
  /** The bytes from `offset` (default 0), `length` of them (default: to the end). */
  stream(offset?: number, length?: number): Promise<ReadableStream<Uint8Array>>;
}

/** The artifact format `packModel` writes: Docker model-spec v0.1 or v0.2, or CNCF ModelPack. */
export type PackFormat = "docker-v0.1" | "docker-v0.2" | "modelpack";

/** Options of `packModel`. */
export interface PackModelOptions {
  /** Default `docker-v0.1`. */
  format?: PackFormat;
  /** The store the manifest graph is written to. */
  store: Store;
  /** A name to tag the manifest with in the store. */
  tag?: string;
  /** Model name for the config (ModelPack `descriptor.name`). */
  name?: string;
  /** Hash implementation (default: feature-detected). */
  createHasher?: CreateHasher;
  /** Called as each file is hashed and stored. */
  onProgress?: (event: { path: string; bytes: number; total: number }) => void;
}

/** What `packModel` wrote: the manifest's descriptor, the manifest, and its exact bytes. */
export interface PackResult {
  /** The manifest's descriptor: what `pushModel` and `copyGraph` take as the root. */
  descriptor: Descriptor;
  /** The manifest, parsed. */
  manifest: ImageManifest;
  /** The manifest's bytes as stored (their digest is `descriptor.digest`). */
  bytes: Uint8Array;
}

const PATH = "org.cncf.model.filepath";
const TITLE = "org.opencontainers.image.title";
const encoder = new TextEncoder();
const PRECISION: Record<string, string> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  F64: "float64",
  I8: "int8",
  U8: "uint8",
};

const isDoc = (path: string) =>
  /(^|\/)(readme|license|licence|notice)[^/]*$/i.test(path) || path.endsWith(".md");
const isLicense = (path: string) => /(^|\/)licen[cs]e[^/]*$/i.test(path);

/** Stores a file as a blob (hashing it first, then streaming it in). */
async function storeFile(
  store: Store,
  file: PackFile,
  mediaType: string,
  options: PackModelOptions,
  annotations?: Record<string, string>,
) {
  const digest = await digestStream(await file.stream(), options.createHasher ?? createDefaultHasher);
  const descriptor: Descriptor = {
    mediaType,
    digest,
    size: file.size,
    ...(annotations ? { annotations } : {}),
  };
  await store.push(descriptor, (offset) => file.stream(offset), {
    onProgress: (bytes, total) => options.onProgress?.({ path: file.path, bytes, total }),
  });
  return descriptor;
}

/** What the safetensors headers say: parameter count and the dominant dtype. */
async function weightFacts(weights: PackFile[]) {
  let parameters = 0;
  const bytesByDtype = new Map<string, number>();
  for (const file of weights.filter((f) => tensorFileKind(f.path) === "safetensors")) {
    const header: SafetensorsHeader = await readHeader(
      async (o, l) => readAll(await file.stream(o, l)),
      file.size,
      file.path,
    );
    for (const t of header.tensors) {
      parameters += t.shape.reduce((n, d) => n * d, 1);
      bytesByDtype.set(t.dtype, (bytesByDtype.get(t.dtype) ?? 0) + t.length);
    }
  }
  const dominant = [...bytesByDtype].sort((a, b) => b[1] - a[1])[0]?.[0];
  return { parameters, precision: dominant ? (PRECISION[dominant] ?? dominant.toLowerCase()) : undefined };
}

function humanCount(n: number): string {
  for (const [unit, size] of [
    ["T", 1e12],
    ["B", 1e9],
    ["M", 1e6],
    ["K", 1e3],
  ] as const) {
    if (n >= size) return `${Number((n / size).toFixed(n / size < 10 ? 1 : 0))}${unit}`;
  }
  return String(n);
}

/** A tar of small files, deterministic: sorted, mode 0644, mtime 0, no owner. */
async function configTar(files: PackFile[]): Promise<Uint8Array> {
  const entries = [];
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    entries.push({
      header: {
        name: file.path,
        size: file.size,
        type: "file" as const,
        mode: 0o644,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
        uname: "",
        gname: "",
      },
      body: await readAll(await file.stream()),
    });
  }
  return packTar(entries);
}

/**
 * Packs a model folder into an OCI manifest graph in a store, in one of the real formats. Weight
 * files are streamed (hashed, then stored), never held whole; the result is deterministic — packing
 * the same files twice gives the same manifest digest.
 *
 * @param input The model folder's files (`packFilesFromDirectory` from `oci-model-loader/node` reads one).
 * @param options The store to write to, the format, a tag.
 * @returns The manifest written; `pushModel` sends it to a registry.
 *
 * @example
 * ```ts
 * const files = await packFilesFromDirectory("./tiny-llm"); // from oci-model-loader/node
 * const store = createMemoryStore();
 * const { descriptor } = await packModel(files, { format: "modelpack", store, tag: "v1" });
 * await pushModel(store, descriptor, "ghcr.io/acme/tiny-llm:v1");
 * ```
 */
export async function packModel(input: PackFile[], options: PackModelOptions): Promise<PackResult> {
  const format = options.format ?? "docker-v0.1";
  const createHasher = options.createHasher ?? createDefaultHasher;
  const { store } = options;
  const files = [...input].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of files) {
    if (safeEntryPath(file.path, "the model folder") !== file.path) {
      throw new OciError("INVALID_ARGUMENT", `Cannot pack ${file.path}: use plain relative paths`);
    }
  }
  const weights = files.filter((f) => isWeightPath(f.path));
  const others = files.filter((f) => !isWeightPath(f.path));
  if (weights.length === 0)
    throw new OciError(
      "INVALID_ARGUMENT",
      "Cannot pack: the folder holds no weight files (.safetensors, .gguf, …)",
    );
  const gguf = weights.some((f) => f.path.endsWith(".gguf"));
  const facts = await weightFacts(weights);
  const configJson = others.find((f) => f.path === "config.json");
  if (configJson && configJson.size > CONFIG_JSON_LIMIT) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack config.json: it is ${configJson.size} bytes, over the ${CONFIG_JSON_LIMIT}-byte limit for a model's config.json; keep large data in other files`,
    );
  }
  // Read no more than the size checked, even if the file grew since.
  const modelConfig = configJson
    ? (JSON.parse(
        new TextDecoder().decode(await readAll(await configJson.stream(0, configJson.size))),
      ) as Record<string, unknown>)
    : {};
  const architecture = Array.isArray(modelConfig.architectures)
    ? String(modelConfig.architectures[0])
    : (modelConfig.model_type as string | undefined);
  const weightFormat = gguf ? "gguf" : "safetensors";
  const totalSize = files.reduce((n, f) => n + f.size, 0);

  const layers: Descriptor[] = [];
  let config: Descriptor;
  let artifactType: string | undefined;
  if (format === "modelpack") {
    for (const file of files) {
      const kind = isWeightPath(file.path) ? "weight" : isDoc(file.path) ? "doc" : "weight.config";
      layers.push(
        await storeFile(store, file, `application/vnd.cncf.model.${kind}.v1.raw`, options, {
          [PATH]: file.path,
        }),
      );
    }
    const body = {
      descriptor: { ...(options.name ? { name: options.name } : {}) },
      config: {
        ...(architecture ? { architecture } : {}),
        format: weightFormat,
        ...(facts.precision ? { precision: facts.precision } : {}),
        ...(facts.parameters ? { paramSize: humanCount(facts.parameters) } : {}),
      },
      modelfs: { type: "layers", diffIds: layers.map((l) => l.digest) },
    };
    config = await pushBytes(
      store,
      encoder.encode(JSON.stringify(body)),
      ModelMediaType.ModelPackConfig,
      createHasher,
    );
    artifactType = ModelMediaType.ModelPackManifest;
  } else {
    const weightType = (path: string) =>
      path.endsWith(".gguf") ? ModelMediaType.DockerGguf : ModelMediaType.DockerSafetensors;
    if (format === "docker-v0.2") {
      for (const file of files) {
        const mediaType = isWeightPath(file.path)
          ? weightType(file.path)
          : isLicense(file.path)
            ? "application/vnd.docker.ai.license"
            : "application/vnd.docker.ai.model.file";
        layers.push(await storeFile(store, file, mediaType, options, { [PATH]: file.path }));
      }
    } else {
      for (const file of weights)
        layers.push(await storeFile(store, file, weightType(file.path), options, { [TITLE]: file.path }));
      for (const file of others.filter((f) => isLicense(f.path))) {
        layers.push(
          await storeFile(store, file, "application/vnd.docker.ai.license", options, { [TITLE]: file.path }),
        );
      }
      const tarred = others.filter((f) => !isLicense(f.path));
      if (tarred.length)
        layers.push(
          await pushBytes(store, await configTar(tarred), ModelMediaType.DockerConfigTar, createHasher),
        );
    }
    const body = {
      config: {
        format: weightFormat,
        ...(architecture ? { architecture } : {}),
        ...(facts.parameters ? { parameters: humanCount(facts.parameters) } : {}),
        ...(facts.precision ? { quantization: facts.precision } : {}),
        size: String(totalSize),
      },
      descriptor: {},
    };
    const mediaType =
      format === "docker-v0.2" ? ModelMediaType.DockerConfigV02 : ModelMediaType.DockerConfigV01;
    config = await pushBytes(store, encoder.encode(JSON.stringify(body)), mediaType, createHasher);
  }

  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    ...(artifactType ? { artifactType } : {}),
    config,
    layers,
  };
  const bytes = encoder.encode(JSON.stringify(manifest));
  const descriptor = await pushBytes(store, bytes, MediaType.OciManifest, createHasher);
  if (artifactType) descriptor.artifactType = artifactType;
  if (options.tag) await store.tag(options.tag, descriptor);
  return { descriptor, manifest, bytes };
}
