import type { AddressInfo } from "node:net";

/** A server started by `serveRegistryProxy` or `serveLayout`. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** Stops listening and closes open connections; resolves when the server is closed. */
  close(): Promise<void>;
}

/**
 * Serves a fetch handler over HTTP from Node through `@hono/node-server`, loaded only here so that
 * a process that never serves does not hold it.
 */
export async function listen(
  handler: (request: Request) => Promise<Response>,
  port: number,
  hostname: string,
): Promise<RunningServer> {
  const { serve } = await import("@hono/node-server");
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: (request: Request) => handler(request), port, hostname, overrideGlobalObjects: false },
      (info: AddressInfo) =>
        resolve({
          url: `http://${info.family === "IPv6" ? `[${info.address}]` : info.address}:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              if ("closeAllConnections" in server) server.closeAllConnections();
              server.close(() => done());
            }),
        }),
    );
    server.once("error", reject);
  });
}
