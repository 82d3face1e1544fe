import type { Descriptor, ImageManifest } from "../registry/manifest.js";

/** The model artifact families we read. */
export type ModelFormat = "docker-v0.1" | "docker-v0.2" | "modelpack" | "kitops" | "unknown";

export const ModelMediaType = {
  DockerConfigV01: "application/vnd.docker.ai.model.config.v0.1+json",
  DockerConfigV02: "application/vnd.docker.ai.model.config.v0.2+json",
  DockerSafetensors: "application/vnd.docker.ai.safetensors",
  DockerConfigTar: "application/vnd.docker.ai.vllm.config.tar",
  DockerGguf: "application/vnd.docker.ai.gguf.v3",
  ModelPackManifest: "application/vnd.cncf.model.manifest.v1+json",
  ModelPackConfig: "application/vnd.cncf.model.config.v1+json",
  KitOpsConfig: "application/vnd.kitops.modelkit.config.v1+json",
} as const;

/** Annotation keys that carry a layer's file path, in order of preference. */
export const PATH_ANNOTATIONS = [
  "org.cncf.model.filepath",
  "org.cnai.model.filepath",
  "org.opencontainers.image.title",
] as const;

const MODELPACK_PREFIXES = ["application/vnd.cncf.model.", "application/vnd.cnai.model."];

function isModelPackType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MODELPACK_PREFIXES.some((p) => mediaType.startsWith(p));
}

/** True when an artifact or config media type names a model. */
export function isModelMediaType(mediaType: string | undefined): boolean {
  return (
    mediaType !== undefined &&
    (mediaType.startsWith("application/vnd.docker.ai.") ||
      isModelPackType(mediaType) ||
      mediaType.startsWith("application/vnd.kitops.modelkit."))
  );
}

/**
 * Detects the model family of a manifest: by `artifactType`, then the config media type, then
 * the layer media types.
 */
export function detectFormat(manifest: ImageManifest): ModelFormat {
  const byType = (mediaType: string | undefined): ModelFormat | undefined => {
    if (mediaType === undefined) return undefined;
    if (mediaType === ModelMediaType.DockerConfigV01) return "docker-v0.1";
    if (mediaType === ModelMediaType.DockerConfigV02) return "docker-v0.2";
    if (isModelPackType(mediaType)) return "modelpack";
    if (mediaType.startsWith("application/vnd.kitops.modelkit.")) return "kitops";
    return undefined;
  };
  const found = byType(manifest.artifactType) ?? byType(manifest.config.mediaType);
  if (found) return found;
  const layerTypes = manifest.layers.map((l) => l.mediaType);
  if (layerTypes.some(isModelPackType)) return "modelpack";
  if (layerTypes.some((t) => t.startsWith("application/vnd.kitops.modelkit."))) return "kitops";
  if (layerTypes.some((t) => t.startsWith("application/vnd.docker.ai."))) {
    return manifest.layers.some((l) => layerAnnotatedPath(l) !== undefined) ? "docker-v0.2" : "docker-v0.1";
  }
  return "unknown";
}

function layerAnnotatedPath(layer: Descriptor): string | undefined {
  for (const key of PATH_ANNOTATIONS) {
    const value = layer.annotations?.[key];
    if (value) return value;
  }
  return undefined;
}

/**
 * The file name of each layer: its path annotation, else `model-0000i-of-0000N.safetensors` for
 * unnamed weight shards in manifest order, else undefined (an archive or opaque blob).
 */
export function layerPaths(manifest: ImageManifest): (string | undefined)[] {
  const shards = manifest.layers.filter(
    (l) => l.mediaType === ModelMediaType.DockerSafetensors && layerAnnotatedPath(l) === undefined,
  );
  const width = Math.max(5, String(shards.length).length);
  const pad = (n: number) => String(n).padStart(width, "0");
  let shard = 0;
  return manifest.layers.map((layer) => {
    const named = layerAnnotatedPath(layer);
    if (named !== undefined) return named;
    if (layer.mediaType === ModelMediaType.DockerSafetensors) {
      shard++;
      return `model-${pad(shard)}-of-${pad(shards.length)}.safetensors`;
    }
    return undefined;
  });
}
