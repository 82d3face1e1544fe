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
    ...proxyOptions,
  });
  return listen((request) => proxy(request), port, host);
}
