// oci-model-loader: the web-standard core. Re-exports only: what README.md and docs/api.md document, and the types
// those need. Parsers and helpers for tests and tools are in ./internals.ts ("oci-model-loader/internals").

export type { CreateHasher, DigestAlgorithm, Hasher } from "./digest/hasher.js";
export {
  createDefaultHasher,
  createDigestStreamHasher,
  createJsHasher,
  createWasmHasher,
} from "./digest/hashers.js";
export type { OciErrorCode, OciErrorOptions } from "./errors.js";
export { ERROR_CODES, isOciError, OciError } from "./errors.js";
export type { PullEvent } from "./model/events.js";
export type { ModelFormat } from "./model/format.js";
export type { ModelInfo } from "./model/info.js";
export type { InspectModelOptions, ModelSummary } from "./model/inspect.js";
export { inspectModel } from "./model/inspect.js";
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
export type { RemoteTensorIndexOptions, RemoteTensorOptions } from "./model/remote-tensors.js";
export { remoteGgufMetadata, remoteTensorIndex } from "./model/remote-tensors.js";
export type { Descriptor, ImageIndex, ImageManifest, Manifest, Platform } from "./oci/manifest.js";
export { MediaType, ModelMediaType } from "./oci/media-types.js";
export type { Reference } from "./reference.js";
export { parseReference } from "./reference.js";
export type {
  FetchBlobOptions,
  GetManifestOptions,
  ManifestResult,
  PushBlobOptions,
  RangeOptions,
  RegistryClientOptions,
  RepositoryRef,
  RequestOptions,
} from "./registry/client.js";
export { createRegistryClient, RegistryClient } from "./registry/client.js";
export type { Credential, CredentialProvider } from "./registry/credentials.js";
export type { ProxyOption } from "./registry/proxy-url.js";
export type { RemoteStoreOptions } from "./registry/remote-store.js";
export { createRemoteStore } from "./registry/remote-store.js";
export type { IngestState, StoreBackend } from "./store/backend.js";
export type { CacheStorageLike } from "./store/cache.js";
export { createCacheStore } from "./store/cache.js";
export { createDefaultStore, persistStorage } from "./store/default.js";
export { createStore } from "./store/engine.js";
export type { CopyEvent, CopyGraphOptions } from "./store/graph.js";
export { copyGraph } from "./store/graph.js";
export { createIdbStore } from "./store/idb.js";
export { createMemoryStore } from "./store/memory.js";
export { createOpfsStore } from "./store/opfs.js";
export type {
  BlobPiece,
  BlobRef,
  BlobSource,
  FetchOptions,
  GcResult,
  PushOptions,
  PushResult,
  ReadOnlyStore,
  Span,
  SpanSource,
  Store,
  StoreOptions,
  StoreUsage,
  VerifyOptions,
  VerifyResult,
  WritableStore,
} from "./store/types.js";
export type { TypedArray } from "./tensors/dtypes.js";
export { toFloat32, typedArray } from "./tensors/dtypes.js";
export type { GgmlType, TensorDtype } from "./tensors/ggml-types.js";
export type {
  GgufArray,
  GgufItems,
  GgufMetadata,
  GgufScalar,
  GgufValue,
  GgufValueType,
} from "./tensors/gguf.js";
export type { Tensor } from "./tensors/reader.js";
export { ggufMetadata } from "./tensors/reader.js";
export type { Dtype, TensorInfo } from "./tensors/safetensors.js";
export type { TensorEntry } from "./tensors/types.js";
export type { UploadOptions } from "./webgpu/upload.js";
export { requestModelDevice, uploadToGPU } from "./webgpu/upload.js";
