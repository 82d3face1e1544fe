import type { Descriptor, ImageManifest } from "../oci/manifest.js";
import { isModelPackType, ModelMediaType, PATH_ANNOTATIONS } from "../oci/media-types.js";

/** The model artifact families we read. */
export type ModelFormat = "docker-v0.1" | "docker-v0.2" | "modelpack" | "kitops" | "unknown";

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
