/** Media types of the OCI image spec and Docker's registry formats. */
export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  OciLayout: "application/vnd.oci.layout.header.v1+json",
} as const;

/** The `Accept` header for manifests: every manifest and index type we can read. */
export const MANIFEST_ACCEPT = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
].join(", ");

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest;
}

/** Media types of the model artifact formats we read (Docker Model Runner, ModelPack, KitOps). */
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

/** True for ModelPack (CNCF, and its earlier CNAI spelling) media types. */
export function isModelPackType(mediaType: string | undefined): boolean {
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
