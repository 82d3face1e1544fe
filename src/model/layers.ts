import type { Compression } from "../archive/tar.js";
import type { Descriptor, ImageManifest } from "../oci/manifest.js";
import { ModelMediaType } from "../oci/media-types.js";
import { isWeightPath } from "../tensors/files.js";
import { layerPaths } from "./format.js";

/** How the pull treats a layer. */
export interface PlannedLayer {
  descriptor: Descriptor;
  /** The file it becomes (raw layers), or the archive's own name when annotated. */
  path: string | undefined;
  /** A tar to extract (its files become the model's files). */
  archive: boolean;
  compression: Compression | undefined;
  /** Weights (skipped by a config-only pull). */
  weights: boolean;
}

function compressionOf(mediaType: string): Compression | undefined {
  if (/[.+]tar\+gzip$|\.tar\.gz$/.test(mediaType)) return "gzip";
  if (/[.+]tar\+zstd$/.test(mediaType)) return "zstd";
  return undefined;
}

function isArchive(mediaType: string): boolean {
  return /[.+]tar(\+gzip|\+zstd)?$/.test(mediaType) || mediaType === ModelMediaType.DockerConfigTar;
}

function isWeightType(mediaType: string, path: string | undefined): boolean {
  if (mediaType === ModelMediaType.DockerSafetensors || mediaType === ModelMediaType.DockerGguf) return true;
  if (mediaType === "application/vnd.docker.ai.mmproj") return true;
  if (/^application\/vnd\.(cncf|cnai)\.model\.weight\.v1\./.test(mediaType)) return true;
  if (/^application\/vnd\.kitops\.modelkit\.(model|modelpart)\.v1\./.test(mediaType)) return true;
  return path !== undefined && isWeightPath(path);
}

/** Classifies every layer of a model manifest, in manifest order. */
export function planLayers(manifest: ImageManifest): PlannedLayer[] {
  const paths = layerPaths(manifest);
  return manifest.layers.map((descriptor, i) => {
    const path = paths[i];
    return {
      descriptor,
      path,
      archive: isArchive(descriptor.mediaType),
      compression: compressionOf(descriptor.mediaType),
      weights: isWeightType(descriptor.mediaType, path),
    };
  });
}
