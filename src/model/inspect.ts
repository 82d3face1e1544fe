import { parseReference, type Reference } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import { detectFormat, layerPaths, type ModelFormat } from "./format.js";

/** What `inspectModel` tells about a model, without downloading any layer. */
export interface ModelSummary {
  /** The reference as given, normalised. */
  reference: string;
  /** The registry host (`docker.io`, `ghcr.io`, `localhost:5000`). */
  registry: string;
  /** The repository path in it (`ai/smollm2`). */
  repository: string;
  /** Digest of the (resolved) manifest. */
  digest: string;
  /** The manifest's media type. */
  mediaType: string;
  /** The manifest's `artifactType`; null when it states none. */
  artifactType: string | null;
  /** The artifact format, told from the media types. */
  format: ModelFormat;
  /** The index the manifest was chosen from, when the reference named one. */
  index: { digest: string; mediaType: string } | null;
  /** The config blob's descriptor. */
  config: { mediaType: string; digest: string; size: number };
  /** The layers in manifest order, each with the file path it unpacks to (null when it names none). */
  layers: { mediaType: string; digest: string; size: number; path: string | null }[];
}

/** Options of `inspectModel`: those of the registry client, or a client to reuse. */
export interface InspectModelOptions extends RegistryClientOptions {
  /** A client to reuse (its options win over the ones given here). */
  client?: RegistryClient;
  /** Aborts the manifest request. */
  signal?: AbortSignal;
}

/**
 * Fetches and verifies a model's manifest and describes it: format, layers, file names.
 *
 * @param reference `[registry/]repository[:tag][@digest]`, or a parsed `Reference`.
 * @param options How to reach the registry, and an abort signal.
 * @returns The summary; no layer is downloaded.
 *
 * @example
 * ```ts
 * const summary = await inspectModel("ai/smollm2:360M");
 * for (const layer of summary.layers) console.log(layer.path, layer.size);
 * ```
 */
export async function inspectModel(
  reference: string | Reference,
  options: InspectModelOptions = {},
): Promise<ModelSummary> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const client = options.client ?? createRegistryClient(options);
  const result = await client.getManifest(ref, options.signal ? { signal: options.signal } : {});
  const manifest = result.manifest;
  const paths = layerPaths(manifest);
  return {
    reference: ref.toString(),
    registry: ref.registry,
    repository: ref.repository,
    digest: result.digest,
    mediaType: result.mediaType,
    artifactType: manifest.artifactType ?? null,
    format: detectFormat(manifest),
    index: result.index ? { digest: result.index.digest, mediaType: result.index.mediaType } : null,
    config: {
      mediaType: manifest.config.mediaType,
      digest: manifest.config.digest,
      size: manifest.config.size,
    },
    layers: manifest.layers.map((l, i) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      path: paths[i] ?? null,
    })),
  };
}
