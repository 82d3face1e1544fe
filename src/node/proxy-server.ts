import { lookup } from "node:dns/promises";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createRegistryProxy, type RegistryProxyOptions } from "../proxy/index.js";

export interface ServeRegistryProxyOptions extends RegistryProxyOptions {
  /** Port to listen on (0 = any free port). Default 8787. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
}

export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the registry proxy from Node through `@hono/node-server`, resolving host names so that a
 * name pointing at a private address is refused like the address itself.
 */
export function serveRegistryProxy(options: ServeRegistryProxyOptions): Promise<RunningServer> {
  const { port = 8787, host = "127.0.0.1", ...proxyOptions } = options;
  const proxy = createRegistryProxy({
    resolve: async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address),
    ...proxyOptions,
  });
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: (request: Request) => proxy(request), port, hostname: host, overrideGlobalObjects: false },
      (info: AddressInfo) => {
        const shown = info.family === "IPv6" ? `[${info.address}]` : info.address;
        resolve({
          url: `http://${shown}:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              if ("closeAllConnections" in server) server.closeAllConnections();
              server.close(() => done());
            }),
        });
      },
    );
    server.once("error", reject);
  });
}
