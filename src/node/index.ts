// oci-model-loader/node: Node-only pieces (node:crypto hasher, Docker config credentials).
export { dockerConfigPath, readDockerCredential, withIdentityTokens } from "./docker-config.js";
export { createFsStore } from "./fs-store.js";
export { createNodeHasher } from "./hasher.js";
export type { RunningServer } from "./listen.js";
export {
  packFileFromDisk,
  packFileFromPath,
  packFilesFromDirectory,
  packFilesFromGguf,
} from "./pack-files.js";
export type { ServeRegistryProxyOptions } from "./proxy-server.js";
export { serveRegistryProxy } from "./proxy-server.js";
export { createLayoutHandler, serveLayout } from "./serve.js";
