/** Manifests: fetched and verified, indexes resolved by a policy, existence checks, uploads. */
import { digestBytes, parseDigest } from "../digest/hasher.js";
import { OciError } from "../errors.js";
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndex,
  MANIFEST_SIZE_LIMIT,
  type Manifest,
  type Platform,
  parseManifest,
} from "../oci/manifest.js";
import { MANIFEST_ACCEPT } from "../oci/media-types.js";
import { digestProblem, manifestReference, type Reference, withDigest } from "../reference.js";
import { pushScope, type RegistryApi, type RepositoryRef, type RequestOptions, toRepository } from "./api.js";
import { discard, readCapped, responseError } from "./http.js";

/** Options of `RegistryClient.getManifest`. */
export interface GetManifestOptions extends RequestOptions {
  /** Resolve an index to one of its manifests (default true). */
  resolveIndex?: boolean;
}

/** A manifest fetched and verified against its digest. */
export interface ManifestResult<M extends Manifest = Manifest> {
  /** The reference, pinned to the manifest's digest. */
  reference: Reference;
  /** The manifest's digest (of `bytes`). */
  digest: string;
  /** The manifest's media type. */
  mediaType: string;
  /** The manifest, parsed and validated. */
  manifest: M;
  /** The exact bytes that hash to `digest`. */
  bytes: Uint8Array;
  /** The index this manifest was chosen from, when the reference named an index. */
  index?: { digest: string; mediaType: string; manifest: ImageIndex };
}

/** Which manifest of an index to take. */
export interface IndexPolicy {
  /** True for an `artifactType` or config media type to take first (the client's default: a model's). */
  prefers: (mediaType: string | undefined) => boolean;
  /** Else the manifest for this platform. */
  platform?: Partial<Platform> | undefined;
}

const MAX_INDEX_DEPTH = 2;
const INDEX_PROBE_LIMIT = 16;

function matchesPlatform(candidate: Platform | undefined, wanted: Partial<Platform>): boolean {
  if (!candidate) return false;
  return (Object.keys(wanted) as (keyof Platform)[]).every(
    (k) => wanted[k] === undefined || candidate[k] === wanted[k],
  );
}

/**
 * Fetches a manifest by tag or digest, refuses it over 4 MiB, verifies its bytes against the
 * reference's digest and the registry's `Docker-Content-Digest`, and resolves an index to one
 * manifest (one `policy` prefers first, else its platform, else the first entry).
 */
export async function getManifest(
  api: RegistryApi,
  policy: IndexPolicy,
  reference: RepositoryRef,
  options: GetManifestOptions = {},
): Promise<ManifestResult> {
  const ref = toRepository(reference);
  const result = await fetchManifest(api, ref, manifestReference(ref), options.signal);
  if (options.resolveIndex === false || !isIndex(result.manifest)) return result;
  return resolveIndex(api, policy, ref, result, options.signal, new Set([result.digest]), 1);
}

async function fetchManifest(
  api: RegistryApi,
  ref: Reference,
  target: string,
  signal?: AbortSignal,
): Promise<ManifestResult> {
  const action = `fetch manifest ${ref.registry}/${ref.repository}@${target}`.replace(/@(?!sha)/, ":");
  const response = await api.request(ref, `/manifests/${target}`, {
    action,
    headers: { accept: MANIFEST_ACCEPT },
    signal,
  });
  if (!response.ok) throw await responseError(response, action);
  const bytes = await readCapped(response, MANIFEST_SIZE_LIMIT, "MANIFEST_INVALID", action);
  const pinned = target.includes(":") ? target : undefined;
  const header = response.headers.get("docker-content-digest") ?? undefined;
  if (header !== undefined && digestProblem(header)) {
    throw new OciError(
      "MANIFEST_INVALID",
      `Cannot ${action}: the registry sent an invalid Docker-Content-Digest "${header}"`,
    );
  }
  const expected = pinned ?? header;
  const algorithm = expected ? parseDigest(expected).algorithm : "sha256";
  const digest = await digestBytes(bytes, api.createHasher, algorithm);
  for (const claimed of [pinned, header]) {
    if (claimed !== undefined && claimed !== digest && parseDigest(claimed).algorithm === algorithm) {
      throw new OciError(
        "DIGEST_MISMATCH",
        `Cannot ${action}: the manifest hashes to ${digest}, not ${claimed}`,
      );
    }
  }
  const manifest = parseManifest(bytes, response.headers.get("content-type") ?? "", `${ref}`);
  return { reference: withDigest(ref, digest), digest, mediaType: manifest.mediaType, manifest, bytes };
}

async function resolveIndex(
  api: RegistryApi,
  policy: IndexPolicy,
  ref: Reference,
  index: ManifestResult,
  signal: AbortSignal | undefined,
  seen: Set<string>,
  depth: number,
): Promise<ManifestResult<ImageManifest>> {
  const entries = (index.manifest as ImageIndex).manifests;
  const what = `index ${ref.registry}/${ref.repository}@${index.digest}`;
  if (entries.length === 0)
    throw new OciError("MANIFEST_INVALID", `Cannot resolve ${what}: it lists no manifests`);
  const platform = policy.platform;
  // An entry whose artifactType names a model is taken as is. Otherwise the children are looked
  // at (the platform match first, so one that is a model costs one fetch): the first whose
  // artifactType or config is a model wins, else the platform match, else the first entry. A
  // platform match alone never hides a model whose index entry lacks artifactType (skopeo and
  // older tools drop it).
  const chosen = entries.find((d) => policy.prefers(d.artifactType));
  const match = platform ? entries.find((d) => matchesPlatform(d.platform, platform)) : undefined;
  const candidates = chosen
    ? [chosen]
    : (match ? [match, ...entries.filter((d) => d !== match)] : entries).slice(0, INDEX_PROBE_LIMIT);
  let first: ManifestResult<ImageManifest> | undefined;
  for (const descriptor of candidates) {
    if (seen.has(descriptor.digest)) {
      throw new OciError(
        "MANIFEST_INVALID",
        `Cannot resolve ${what}: it refers back to ${descriptor.digest}`,
      );
    }
    let child = await fetchManifest(api, ref, descriptor.digest, signal);
    if (isIndex(child.manifest)) {
      if (depth >= MAX_INDEX_DEPTH) {
        throw new OciError(
          "MANIFEST_INVALID",
          `Cannot resolve ${what}: indexes nest more than ${MAX_INDEX_DEPTH} deep`,
        );
      }
      child = await resolveIndex(
        api,
        policy,
        ref,
        child,
        signal,
        new Set([...seen, descriptor.digest]),
        depth + 1,
      );
    }
    const m = child.manifest as ImageManifest;
    const resolved: ManifestResult<ImageManifest> = {
      ...child,
      manifest: m,
      index: { digest: index.digest, mediaType: index.mediaType, manifest: index.manifest as ImageIndex },
    };
    if (chosen || policy.prefers(m.artifactType) || policy.prefers(m.config.mediaType)) return resolved;
    first ??= resolved;
  }
  return first as ManifestResult<ImageManifest>;
}

/** Asks whether a manifest exists and returns its descriptor, without downloading it; undefined when absent. */
export async function headManifest(
  api: RegistryApi,
  reference: RepositoryRef,
  options: RequestOptions = {},
): Promise<Descriptor | undefined> {
  const ref = toRepository(reference);
  const target = manifestReference(ref);
  const action = `check manifest ${ref.registry}/${ref.repository} ${target}`;
  const response = await api.request(ref, `/manifests/${target}`, {
    action,
    method: "HEAD",
    headers: { accept: MANIFEST_ACCEPT },
    signal: options.signal,
  });
  if (response.status === 404) return undefined;
  if (!response.ok) throw await responseError(response, action);
  const digest = response.headers.get("docker-content-digest");
  const size = Number(response.headers.get("content-length"));
  const mediaType = response.headers.get("content-type")?.split(";")[0]?.trim();
  if (!digest || digestProblem(digest) || !Number.isSafeInteger(size) || !mediaType) {
    const full = await fetchManifest(api, ref, target, options.signal);
    return { mediaType: full.mediaType, digest: full.digest, size: full.bytes.byteLength };
  }
  return { mediaType, digest, size };
}

/** Uploads a manifest under the reference's tag (or digest) and returns its digest. */
export async function putManifest(
  api: RegistryApi,
  reference: RepositoryRef,
  bytes: Uint8Array,
  mediaType: string,
  options: RequestOptions = {},
): Promise<string> {
  const ref = toRepository(reference);
  const target = manifestReference(ref);
  const action = `push manifest ${ref.registry}/${ref.repository} ${target}`;
  const digest = await digestBytes(bytes, api.createHasher);
  const response = await api.request(ref, `/manifests/${target}`, {
    action,
    method: "PUT",
    scopes: pushScope(ref),
    headers: { "content-type": mediaType },
    body: bytes as BodyInit,
    signal: options.signal,
  });
  if (response.status !== 201) throw await responseError(response, action);
  discard(response);
  const stored = response.headers.get("docker-content-digest");
  if (stored && stored !== digest && stored.startsWith("sha256:")) {
    throw new OciError(
      "DIGEST_MISMATCH",
      `Cannot ${action}: the registry stored ${stored}, we sent ${digest}`,
    );
  }
  return digest;
}
