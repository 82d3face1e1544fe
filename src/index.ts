// oci-model-loader: the web-standard core. Re-exports only.

export type { ArchiveFile, ArchiveLimits, Compression } from "./archive/tar.js";
export { walkTar } from "./archive/tar.js";
export type { CreateHasher, DigestAlgorithm, Hasher } from "./digest/hasher.js";
export { digestBytes, parseDigest } from "./digest/hasher.js";
export {
  createDefaultHasher,
  createDigestStreamHasher,
  createJsHasher,
  createWasmHasher,
} from "./digest/hashers.js";
export type { ExpectedContent, VerifyStreamOptions } from "./digest/verify.js";
export { createVerifyStream } from "./digest/verify.js";
export type { OciErrorCode, OciErrorOptions } from "./errors.js";
export { ERROR_CODES, isOciError, OciError } from "./errors.js";
export type { PullEvent } from "./model/events.js";
export type { ModelFormat } from "./model/format.js";
export { detectFormat, layerPaths } from "./model/format.js";
export type { ModelInfo } from "./model/info.js";
export { modelInfo } from "./model/info.js";
export type { InspectModelOptions, ModelSummary } from "./model/inspect.js";
export { inspectModel } from "./model/inspect.js";
export type { PlannedLayer } from "./model/layers.js";
export { planLayers } from "./model/layers.js";
export type { StoredModel } from "./model/list.js";
export { listModels, removeModel } from "./model/list.js";
export type { ModelFile } from "./model/model.js";
export { Model } from "./model/model.js";
export type { PackFile, PackFormat, PackModelOptions, PackResult } from "./model/pack.js";
export { packModel } from "./model/pack.js";
export type { PullModelOptions } from "./model/pull.js";
export { openModel, pullModel } from "./model/pull.js";
export type { PushModelOptions, PushModelResult } from "./model/push.js";
export { pushModel } from "./model/push.js";
export type { ModelFileInfo, ModelRecord } from "./model/record.js";
export { remoteTensorIndex } from "./model/remote-tensors.js";
export type { Descriptor, ImageIndex, ImageManifest, Manifest, Platform } from "./oci/manifest.js";
export { parseManifest } from "./oci/manifest.js";
export { isModelMediaType, MANIFEST_ACCEPT, MediaType, ModelMediaType } from "./oci/media-types.js";
export type { Reference } from "./reference.js";
export { digestProblem, parseReference, registryApiHost } from "./reference.js";
export type { Challenge } from "./registry/challenge.js";
export { parseChallenges } from "./registry/challenge.js";
export type {
  FetchBlobOptions,
  GetManifestOptions,
  ManifestResult,
  PushBlobOptions,
  RegistryClientOptions,
  RepositoryRef,
  RequestOptions,
} from "./registry/client.js";
export { createRegistryClient, RegistryClient } from "./registry/client.js";
export type { Credential, CredentialProvider } from "./registry/credentials.js";
export type { ProxyOption } from "./registry/proxy-url.js";
export { copyBlob, createRemoteStore } from "./registry/remote-store.js";
export type { IngestState, StoreBackend } from "./store/backend.js";
export type { CacheStorageLike } from "./store/cache.js";
export { createCacheStore } from "./store/cache.js";
export { createDefaultStore, persistStorage } from "./store/default.js";
export { createStore } from "./store/engine.js";
export { createIdbStore } from "./store/idb.js";
export { createMemoryStore } from "./store/memory.js";
export { createOpfsStore } from "./store/opfs.js";
export type {
  BlobRef,
  BlobSource,
  FetchOptions,
  GcResult,
  PushOptions,
  PushResult,
  ReadOnlyStore,
  Store,
  StoreOptions,
  StoreUsage,
  VerifyOptions,
  VerifyResult,
} from "./store/types.js";
export type { TypedArray } from "./tensors/dtypes.js";
export { toFloat32, typedArray } from "./tensors/dtypes.js";
export type { Tensor } from "./tensors/reader.js";
export { iterateTensors, readTensor, tensorIndex } from "./tensors/reader.js";
export type { Dtype, SafetensorsHeader, TensorInfo } from "./tensors/safetensors.js";
export { DTYPE_SIZES, HEADER_LIMIT, parseHeader, readHeader } from "./tensors/safetensors.js";
export { buildTensorIndex } from "./tensors/tensor-index.js";
export type { TensorEntry, TensorFile } from "./tensors/types.js";
export type { UploadOptions } from "./webgpu/upload.js";
export { requestModelDevice, uploadToGPU } from "./webgpu/upload.js";
