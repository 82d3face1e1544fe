// oci-model-loader/proxy: a runtime-agnostic registry proxy for browsers.
export type { CacheLike } from "../store/cache.js";
export type { RegistryProxy, RegistryProxyOptions, WaitUntil } from "./handler.js";
export { createRegistryProxy } from "./handler.js";
export { REGISTRY_PRESETS } from "./hosts.js";
