// The demo's servers: the committed OCI layout served read-only, the registry proxy in front of it,
// and the Vite dev server for the page. Used by `npm run demo` and by the end-to-end test.

import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createServer } from "vite";
import type { DemoConfig } from "../demo/config.js";
import { parseReference } from "../src/index.js";
import {
  createFsStore,
  createLayoutHandler,
  type RunningServer,
  serveRegistryProxy,
} from "../src/node/index.js";

export const DEMO_DIR = join(import.meta.dirname, "../demo");

export interface DemoServers {
  url: string;
  /** The page's default model: the transformer (demo/layout's tag lm-bf16), or --registry's reference. */
  reference: string;
  /** The character MLP of the first demo (demo/layout's tag v1); "" with a registry. */
  charMlpReference: string;
  /** The transformers.js tab's model (the tiny BERT under demo/layout's tag tiny-bert-v1); "" with a registry. */
  transformersReference: string;
  proxy: string;
  /** Blob requests the layout server answered. */
  blobRequests(): number;
  close(): Promise<void>;
}

function listen(fetch: (request: Request) => Promise<Response>): Promise<RunningServer> {
  return new Promise((resolve) => {
    const server = serve(
      { fetch, port: 0, hostname: "127.0.0.1", overrideGlobalObjects: false },
      (info: AddressInfo) =>
        resolve({
          url: `http://127.0.0.1:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
            }),
        }),
    );
  });
}

export async function startDemo(
  options: { registry?: string; port?: number; open?: boolean } = {},
): Promise<DemoServers> {
  let blobRequests = 0;
  let layout: RunningServer | undefined;
  let reference: string;
  let charMlpReference = "";
  let transformersReference = "";
  let allow: string;
  if (options.registry) {
    const ref = parseReference(options.registry);
    reference = ref.toString();
    allow = ref.registry === "docker.io" ? "dockerhub" : ref.registry;
  } else {
    const handler = createLayoutHandler(createFsStore(join(DEMO_DIR, "layout")));
    layout = await listen(async (request) => {
      if (new URL(request.url).pathname.includes("/blobs/")) blobRequests++;
      return handler(request);
    });
    allow = new URL(layout.url).host;
    // Every repository name maps onto the one layout: the tag picks the model. The transformer's
    // bf16 copy (Docker model-spec v0.1; demo:pack-lm also packs lm-f32 and the ModelPack tags).
    reference = `${allow}/demo/lm:lm-bf16`;
    charMlpReference = `${allow}/demo/char-mlp:v1`;
    transformersReference = `${allow}/demo/tiny-bert:tiny-bert-v1`;
  }
  const proxy = await serveRegistryProxy({ allow: [allow], port: 0 });
  const vite = await createServer({
    configFile: false,
    root: DEMO_DIR,
    logLevel: "warn",
    define: {
      __DEMO__: JSON.stringify({
        reference,
        charMlp: charMlpReference,
        transformers: transformersReference,
        proxy: proxy.url,
      } satisfies DemoConfig),
    },
    // Bundled before the first page loads: found later (the transformers.js tab is imported on
    // demand), Vite would bundle it mid-session and reload the page.
    optimizeDeps: { include: ["@huggingface/transformers"] },
    server: { host: "localhost", port: options.port ?? 5173, strictPort: false, open: options.open ?? false },
    cacheDir: join(DEMO_DIR, "..", "node_modules", ".vite-demo"),
  });
  await vite.listen();
  const url = vite.resolvedUrls?.local[0] ?? `http://localhost:${vite.config.server.port}/`;
  return {
    url,
    reference,
    charMlpReference,
    transformersReference,
    proxy: proxy.url,
    blobRequests: () => blobRequests,
    close: async () => {
      await vite.close();
      await proxy.close();
      await layout?.close();
    },
  };
}
