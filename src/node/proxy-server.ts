import { lookup } from "node:dns/promises";
import { createRegistryProxy, type RegistryProxyOptions } from "../proxy/index.js";
import { listen, type RunningServer } from "./listen.js";

/** Options of `serveRegistryProxy`: the proxy's, and where to listen. */
export interface ServeRegistryProxyOptions extends RegistryProxyOptions {
  /** Port to listen on (0 = any free port). Default 8787. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
}

/**
 * Serves the registry proxy from Node through `@hono/node-server`, resolving host names so that a
 * name pointing at a private address is refused like the address itself.
 *
 * @param options The proxy's options (`allow` is required), port and address.
 * @returns The running server: its URL, and `close`.
 */
export function serveRegistryProxy(options: ServeRegistryProxyOptions): Promise<RunningServer> {
  const { port = 8787, host = "127.0.0.1", ...proxyOptions } = options;
  const proxy = createRegistryProxy({
    resolve: async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address),
    fetch: uploadsUncloned(globalThis.fetch),
    ...proxyOptions,
  });
  return listen((request) => proxy(request), port, host);
}

/**
 * `fetch` as the proxy uses it in Node: a request with a body (an upload) is sent with redirects as
 * errors and no window, so that fetch does not clone it to replay on a redirect. The clone's unread
 * half of the teed body holds every byte sent (nodejs/undici#4058): each caller's upload, up to
 * `maxRequestBytes`, would sit in the proxy's memory. The proxy never follows a redirect of a request
 * with a body; one is answered with a 502 that says why.
 */
export function uploadsUncloned(fetch: typeof globalThis.fetch): typeof globalThis.fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    if (!(init?.body instanceof ReadableStream)) return fetch(input, init);
    try {
      return await fetch(input, { ...init, redirect: "error", window: null });
    } catch (error) {
      const cause = error instanceof Error ? error.cause : undefined;
      if (!(cause instanceof Error && /redirect/i.test(cause.message))) throw error;
      const message =
        "oci-model-loader proxy: the registry redirected an upload, whose streamed body cannot be sent twice";
      return Response.json({ errors: [{ code: "UNSUPPORTED", message }] }, { status: 502 });
    }
  }) as typeof globalThis.fetch;
}
