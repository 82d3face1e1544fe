import type { Compression } from "../archive/tar.js";
import type { Descriptor, ImageManifest } from "../oci/manifest.js";
import { type LayerRole, modelLayerType } from "../oci/media-types.js";
import { isWeightFile, isWeightPath } from "../tensors/files.js";
import { layerPaths } from "./format.js";

/** How the pull treats a layer. */
export interface PlannedLayer {
  descriptor: Descriptor;
  /** The file it becomes (raw layers), or the archive's own name when annotated. */
  path: string | undefined;
  /** What its media type says it holds; undefined for a media type no model format defines. */
  role: LayerRole | undefined;
  /** A tar to extract (its files become the model's files). */
  archive: boolean;
  /** The archive's compression, or a file's compressed as a whole (its one file is unpacked). */
  compression: Compression | undefined;
  /**
   * Skipped by a config-only pull: the model's weights, and the other large binaries that are not
   * config — projectors, adapters, KitOps model parts; for an unknown media type, a weight file name.
   */
  weights: boolean;
  /**
   * The file it becomes is one of `Model.weights`: by its media type, which for a projector, an
   * adapter, a chat template or a license is never; by its name only where the media type does not
   * say (Docker's `model.file`, an unknown type). False for an archive (its files are judged by name).
   */
  modelWeight: boolean;
}

/** Roles whose layers a config-only pull leaves out. */
const BULK_ROLES = new Set<LayerRole>(["weights", "projector", "adapter", "part"]);

/** Compression of a media type no model format defines, from its suffix (`+gzip`, `.tar.gz`, `+zstd`). */
function compressionOf(mediaType: string): Compression | undefined {
  if (/[.+]tar\+gzip$|\.tar\.gz$/.test(mediaType)) return "gzip";
  if (/[.+]tar\+zstd$/.test(mediaType)) return "zstd";
  return undefined;
}

/**
 * Classifies every layer of a model manifest, in manifest order: file or archive and its compression
 * from the media type table (`modelLayerType`), else from the media type's suffix (`….tar`,
 * `….tar+gzip`). A file layer with a compression (KitOps `.raw+gzip`, `.raw+zstd`) is one file
 * compressed as a whole.
 */
export function planLayers(manifest: ImageManifest): PlannedLayer[] {
  const paths = layerPaths(manifest);
  return manifest.layers.map((descriptor, i) => {
    const path = paths[i];
    const type = modelLayerType(descriptor.mediaType);
    const archive = type ? type.packing === "tar" : /[.+]tar(\+gzip|\+zstd)?$/.test(descriptor.mediaType);
    const compression = type ? type.compression : compressionOf(descriptor.mediaType);
    const byName = path !== undefined && isWeightPath(path);
    const role = type?.role;
    return {
      descriptor,
      path,
      role,
      archive,
      compression,
      weights: role !== undefined && role !== "file" ? BULK_ROLES.has(role) : byName,
      modelWeight:
        !archive && (path === undefined ? role === "weights" : isWeightFile(path, descriptor.mediaType)),
    };
  });
}
