import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Descriptor } from "../../src/index.js";
import { run } from "./process.js";
import { type TestRegistry, USER } from "./registry.js";

/** A manifest (or index) with the blobs it needs, ready to be written as an OCI layout. */
export interface Artifact {
  descriptor: Descriptor;
  bytes: Uint8Array;
  /** Every blob and child manifest below it, by digest. */
  blobs: Map<string, Uint8Array>;
}

export interface LayerInput {
  mediaType: string;
  bytes: Uint8Array;
  annotations?: Record<string, string>;
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function describe(
  bytes: Uint8Array,
  mediaType: string,
  annotations?: Record<string, string>,
): Descriptor {
  return {
    mediaType,
    digest: sha256(bytes),
    size: bytes.byteLength,
    ...(annotations ? { annotations } : {}),
  };
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

export function buildManifest(input: {
  config: LayerInput;
  layers: LayerInput[];
  artifactType?: string;
  mediaType?: string;
}): Artifact {
  const mediaType = input.mediaType ?? "application/vnd.oci.image.manifest.v1+json";
  const blobs = new Map<string, Uint8Array>();
  const add = (l: LayerInput) => {
    const d = describe(l.bytes, l.mediaType, l.annotations);
    blobs.set(d.digest, l.bytes);
    return d;
  };
  const config = add(input.config);
  const layers = input.layers.map(add);
  const bytes = json({
    schemaVersion: 2,
    mediaType,
    ...(input.artifactType ? { artifactType: input.artifactType } : {}),
    config,
    layers,
  });
  const descriptor = describe(bytes, mediaType);
  if (input.artifactType) descriptor.artifactType = input.artifactType;
  return { descriptor, bytes, blobs };
}

/**
 * An OCI index over `children`. Entries carry `artifactType` only with `keepArtifactType`:
 * skopeo 1.9 drops that field when it copies an index, so its pushes must go without it.
 */
export function buildIndex(
  children: { artifact: Artifact; platform?: Descriptor["platform"] }[],
  options: { keepArtifactType?: boolean } = {},
): Artifact {
  const mediaType = "application/vnd.oci.image.index.v1+json";
  const blobs = new Map<string, Uint8Array>();
  const manifests = children.map(({ artifact, platform }) => {
    for (const [digest, bytes] of artifact.blobs) blobs.set(digest, bytes);
    blobs.set(artifact.descriptor.digest, artifact.bytes);
    const { artifactType, ...entry } = artifact.descriptor;
    return {
      ...entry,
      ...(platform ? { platform } : {}),
      ...(options.keepArtifactType && artifactType ? { artifactType } : {}),
    };
  });
  const bytes = json({ schemaVersion: 2, mediaType, manifests });
  return { descriptor: describe(bytes, mediaType), bytes, blobs };
}

/** A small model in Docker model-spec v0.1 shape: two safetensors shards and a config tar (opaque bytes). */
export function sampleModel(options: { shardSize?: number; artifactType?: string } = {}): Artifact {
  const size = options.shardSize ?? 3 * 1024 * 1024 + 17;
  return buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: json({
        config: { format: "safetensors", parameters: "tiny" },
        descriptor: { created: "2026-01-01T00:00:00Z" },
      }),
    },
    layers: [
      { mediaType: "application/vnd.docker.ai.safetensors", bytes: randomBytes(size) },
      { mediaType: "application/vnd.docker.ai.safetensors", bytes: randomBytes(1024) },
      { mediaType: "application/vnd.docker.ai.vllm.config.tar", bytes: randomBytes(2048) },
    ],
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
  });
}

/** Writes an OCI image layout with one tagged entry. */
export async function writeLayout(dir: string, tag: string, artifact: Artifact): Promise<void> {
  const blobDir = join(dir, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const all = new Map(artifact.blobs).set(artifact.descriptor.digest, artifact.bytes);
  for (const [digest, bytes] of all) await writeFile(join(blobDir, digest.slice(7)), bytes);
  const entry = { ...artifact.descriptor, annotations: { "org.opencontainers.image.ref.name": tag } };
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
}

/**
 * Pushes an artifact with skopeo (an independent client) from an OCI layout:
 * `skopeo copy [--all] oci:DIR:TAG docker://HOST/REPO:TAG`.
 */
export async function pushWithSkopeo(
  registry: TestRegistry,
  artifact: Artifact,
  repository: string,
  tag: string,
) {
  const dir = await mkdtemp(join(tmpdir(), "oml-layout-"));
  try {
    await writeLayout(dir, tag, artifact);
    const creds = registry.auth === "none" ? [] : ["--dest-creds", `${USER.username}:${USER.password}`];
    const all = artifact.descriptor.mediaType.includes("index") ? ["--all"] : [];
    await run("skopeo", [
      "copy",
      "--quiet",
      "--preserve-digests",
      "--dest-tls-verify=false",
      ...creds,
      ...all,
      `oci:${dir}:${tag}`,
      `docker://${registry.host}/${repository}:${tag}`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Byte equality without vitest's slow element-wise diff of large arrays. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}
