import { OciError } from "../errors.js";
import { digestProblem } from "../reference.js";
import { isIndexMediaType, isManifestMediaType, MediaType } from "./media-types.js";

/** An OCI content descriptor. */
export interface Descriptor {
  /** The media type of the content it points at. */
  mediaType: string;
  /** The content's digest, `algorithm:hex` (`sha256:…`): what it is fetched by and verified against. */
  digest: string;
  /** The content's length in bytes. */
  size: number;
  /** Other places the content may be downloaded from. */
  urls?: string[];
  /** Arbitrary metadata (`org.opencontainers.image.title` names a layer's file). */
  annotations?: Record<string, string>;
  /** The artifact type of the manifest it points at, in an index. */
  artifactType?: string;
  /** The platform of the manifest it points at, in an index. */
  platform?: Platform;
  /** The content itself, base64: small blobs embedded in the manifest. */
  data?: string;
}

/** The platform of a manifest in an index: what `RegistryClientOptions.platform` is matched against. */
export interface Platform {
  /** The CPU architecture, as Go names it (`amd64`, `arm64`). */
  architecture: string;
  /** The operating system, as Go names it (`linux`, `windows`). */
  os: string;
  /** The CPU variant (`v8` for `arm64`). */
  variant?: string;
  /** The operating system version (Windows builds). */
  "os.version"?: string;
  /** Required operating system features. */
  "os.features"?: string[];
}

/** An image/artifact manifest (OCI or Docker v2 schema 2). */
export interface ImageManifest {
  /** Always 2. */
  schemaVersion: 2;
  /** The manifest's own media type (OCI image manifest, or Docker v2 schema 2). */
  mediaType: string;
  /** What kind of artifact it is, when it is not an image (a model format's type). */
  artifactType?: string;
  /** The config blob: for a model, the format's description of it. */
  config: Descriptor;
  /** The content blobs, in order: for a model, its files or archives of them. */
  layers: Descriptor[];
  /** The manifest this one refers to (a signature's, an SBOM's subject). */
  subject?: Descriptor;
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
}

/** An image index / manifest list. */
export interface ImageIndex {
  /** Always 2. */
  schemaVersion: 2;
  /** The index's own media type (OCI image index, or Docker manifest list). */
  mediaType: string;
  /** What kind of artifact it is, when it is not an image index. */
  artifactType?: string;
  /** The manifests it lists, each with its platform or artifact type. */
  manifests: Descriptor[];
  /** The manifest this one refers to. */
  subject?: Descriptor;
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
}

/** An image manifest or an image index (manifest list), as parsed and validated. */
export type Manifest = ImageManifest | ImageIndex;

/** Bigger manifests are refused before they are read (the distribution spec's own limit). */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;
/** More layers or index entries than this are refused. */
export const MANIFEST_ENTRY_LIMIT = 10_000;

const GENERIC_CONTENT_TYPES = new Set(["", "application/json", "text/plain", "application/octet-stream"]);

export function isIndex(manifest: Manifest): manifest is ImageIndex {
  return isIndexMediaType(manifest.mediaType);
}

function fail(what: string, reason: string): OciError {
  return new OciError("MANIFEST_INVALID", `Cannot read manifest ${what}: ${reason}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkDescriptor(value: unknown, where: string, what: string): Descriptor {
  if (!isObject(value)) throw fail(what, `${where} is not a descriptor object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string" || mediaType === "") throw fail(what, `${where} has no mediaType`);
  if (typeof digest !== "string") throw fail(what, `${where} has no digest`);
  const problem = digestProblem(digest);
  if (problem) throw fail(what, `${where}: ${problem}`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw fail(what, `${where} has an invalid size ${JSON.stringify(size)}`);
  }
  if (value.annotations !== undefined && !isObject(value.annotations)) {
    throw fail(what, `${where} has invalid annotations`);
  }
  return value as unknown as Descriptor;
}

function checkList(value: unknown, where: string, what: string): Descriptor[] {
  if (!Array.isArray(value)) throw fail(what, `"${where}" is not an array`);
  if (value.length > MANIFEST_ENTRY_LIMIT) {
    throw fail(what, `it lists ${value.length} ${where}, more than the limit of ${MANIFEST_ENTRY_LIMIT}`);
  }
  return value.map((item, i) => checkDescriptor(item, `${where}[${i}]`, what));
}

/**
 * Parses and validates manifest bytes. The media type comes from the body's `mediaType`, else the
 * response's `Content-Type` when it names a manifest or index type, else the structure (`manifests`:
 * an OCI index; otherwise an OCI manifest). When the body and a specific `Content-Type` disagree the
 * manifest is refused.
 *
 * @throws {OciError} `MANIFEST_INVALID` naming the broken field.
 */
export function parseManifest(bytes: Uint8Array, contentType = "", what = ""): Manifest {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new OciError("MANIFEST_INVALID", `Cannot read manifest ${what}: it is not valid JSON`, { cause });
  }
  if (!isObject(body)) throw fail(what, "it is not a JSON object");
  if (body.schemaVersion !== 2)
    throw fail(what, `schemaVersion is ${JSON.stringify(body.schemaVersion)}, not 2`);
  const headerType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  const bodyType = typeof body.mediaType === "string" ? body.mediaType : undefined;
  if (bodyType && !GENERIC_CONTENT_TYPES.has(headerType) && headerType !== bodyType) {
    throw fail(what, `its mediaType ${bodyType} disagrees with the Content-Type ${headerType}`);
  }
  // A manifest need not state its mediaType (image-spec made it a SHOULD only in 1.0.2; KitOps 1.7
  // writes none): the Content-Type names it, and where that is generic or names no manifest type
  // (a registry echoing an artifact type), its structure does, as Distribution and containers/image
  // tell them apart: `manifests` makes an index, anything else an image manifest.
  const headerNames = isManifestMediaType(headerType) || isIndexMediaType(headerType);
  const mediaType =
    bodyType ??
    (headerNames ? headerType : Array.isArray(body.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  if (body.artifactType !== undefined && typeof body.artifactType !== "string") {
    throw fail(what, "artifactType is not a string");
  }
  if (body.subject !== undefined) checkDescriptor(body.subject, "subject", what);

  if (isIndexMediaType(mediaType)) {
    checkList(body.manifests, "manifests", what);
  } else if (isManifestMediaType(mediaType)) {
    checkDescriptor(body.config, "config", what);
    checkList(body.layers, "layers", what);
  } else {
    throw fail(what, `media type ${mediaType} is not a manifest or index type`);
  }
  return { ...(body as unknown as Manifest), mediaType };
}
