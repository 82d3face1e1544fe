// The registry proxy as a Cloudflare Worker. Configure it with the variables in wrangler.toml.
import { createRegistryProxy, type RegistryProxy, type WaitUntil } from "../src/proxy/index.js";

export interface Env {
  /** Comma-separated upstream hosts and presets: "dockerhub,ghcr,registry.example.com". Required. */
  ALLOW?: string;
  /** Comma-separated page origins allowed to call the proxy, or "*" (default). */
  ORIGINS?: string;
  /** "true" to keep verified blobs in the Workers cache; each hit is still authorised by the registry. */
  CACHE_BLOBS?: string;
}

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

let built: { env: string; proxy: RegistryProxy } | undefined;

function proxyFor(env: Env): RegistryProxy {
  const key = JSON.stringify([env.ALLOW, env.ORIGINS, env.CACHE_BLOBS]);
  if (built?.env === key) return built.proxy;
  const origins = list(env.ORIGINS);
  const cache =
    env.CACHE_BLOBS === "true" ? (globalThis as { caches?: { default?: Cache } }).caches?.default : undefined;
  const proxy = createRegistryProxy({
    allow: list(env.ALLOW),
    ...(origins.length && !origins.includes("*") ? { origins } : {}),
    ...(cache ? { cache } : {}),
  });
  built = { env: key, proxy };
  return proxy;
}

export default {
  fetch(request: Request, env: Env, context: WaitUntil): Promise<Response> {
    if (list(env.ALLOW).length === 0) {
      return Promise.resolve(
        new Response('Set ALLOW (e.g. "dockerhub,ghcr") in wrangler.toml.\n', { status: 500 }),
      );
    }
    return proxyFor(env)(request, context);
  },
};
