// The demo's servers: the committed OCI layout served read-only, the registry proxy in front of it,
// and the Vite dev server for the page. Used by `npm run demo` and by the end-to-end tests.
// And its production build (npm run demo:build): the static site and the proxy Worker to deploy.

import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { serve } from "@hono/node-server";
import { build, createServer } from "vite";
import type { DemoConfig } from "../demo/config.js";
import { parseReference } from "../src/index.js";
import {
  createFsStore,
  createLayoutHandler,
  type RunningServer,
  serveRegistryProxy,
} from "../src/node/index.js";

export const DEMO_DIR = join(import.meta.dirname, "../demo");
const ROOT = join(DEMO_DIR, "..");

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

export interface BuildDemoOptions {
  /** Where to write: site/ (the static site) and proxy/ (the Worker). Emptied first. Default dist-demo. */
  outDir?: string;
  /** Written to site/demo-config.json, which the built page reads at load time (edit it to change). */
  config?: Partial<DemoConfig>;
  /** The proxy Worker's ALLOW; default the registry of config.reference, else "dockerhub,ghcr". */
  allow?: string;
  /** The proxy Worker's ORIGINS (the site's origin in production); default "*". */
  origins?: string;
  /** Build the proxy Worker too (wrangler deploy --dry-run). Default true. */
  worker?: boolean;
}

/**
 * The demo for production: a Vite build of demo/index.html (lm.html is left out: it is the test
 * page of demo-lm.test.ts, and index.html runs the same model with the same kernels) into
 * `outDir/site`, with demo-config.json beside it, and edge/worker.ts (the registry proxy) as
 * `wrangler deploy` builds it into `outDir/proxy`, with a wrangler.toml that deploys that bundle.
 */
export async function buildDemo(options: BuildDemoOptions = {}): Promise<{ site: string; proxy?: string }> {
  const outDir = options.outDir ?? join(ROOT, "dist-demo");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  // Built output, never committed: ignored here, whatever the checkout's own .gitignore says.
  await writeFile(join(outDir, ".gitignore"), "*\n");
  const site = join(outDir, "site");
  await build({
    configFile: false,
    root: DEMO_DIR,
    base: "./",
    logLevel: "warn",
    // The page reads demo-config.json instead (demo/config.ts).
    define: { __DEMO__: "null" },
    build: { outDir: site, emptyOutDir: true, chunkSizeWarningLimit: 4096 },
    cacheDir: join(ROOT, "node_modules", ".vite-demo"),
  });
  const config: DemoConfig = {
    reference: options.config?.reference ?? "",
    charMlp: options.config?.charMlp ?? "",
    transformers: options.config?.transformers ?? "",
    proxy: options.config?.proxy ?? "",
  };
  await writeFile(join(site, "demo-config.json"), `${JSON.stringify(config, null, 2)}\n`);
  if (options.worker === false) return { site };

  const proxy = join(outDir, "proxy");
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "deploy",
      "--dry-run",
      "--config",
      join(ROOT, "edge/wrangler.toml"),
      "--outdir",
      proxy,
      "--minify",
    ],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" } },
  );
  let allow = options.allow;
  if (!allow && config.reference) {
    const registry = parseReference(config.reference).registry;
    allow = registry === "docker.io" ? "dockerhub" : registry;
  }
  await writeFile(
    join(proxy, "wrangler.toml"),
    `# The registry proxy of the demo site (edge/worker.ts as wrangler builds it), written by npm run demo:build.
#   npx wrangler deploy --config wrangler.toml     (from this folder; then put its URL in ../site/demo-config.json)
name = "oci-model-proxy"
main = "worker.js"
no_bundle = true
compatibility_date = "2026-04-26"

[vars]
# Upstream registries the proxy may reach: presets (dockerhub, ghcr, quay, gcr, mcr, nvcr, ecr-public) or hosts
# ("host" is port 443 only; write "host:port" for another port).
ALLOW = ${JSON.stringify(allow ?? "dockerhub,ghcr")}
# Page origins allowed to use it: the site's origin ("*" for any).
ORIGINS = ${JSON.stringify(options.origins ?? "*")}
# Keep verified blobs in the Workers cache (each hit is still authorised by the registry first).
CACHE_BLOBS = "false"
`,
  );
  await writeFile(join(outDir, "DEPLOY.md"), deployNote(config));
  return { site, proxy };
}

function deployNote(config: DemoConfig): string {
  return `# Deploying the oci-model-loader demo

Written by \`npm run demo:build\`. Two parts:

- \`site/\`: the page, static files only. Serve it from any static host (no server code, no special
  headers; \`.wasm\` as \`application/wasm\`). It reads \`site/demo-config.json\` when it loads:

  \`\`\`json
  ${JSON.stringify(config)}
  \`\`\`

  \`reference\` is the model the page offers first, \`charMlp\` and \`transformers\` the character MLP and
  the transformers.js tab's model, \`proxy\` the URL of the proxy below. Edit the file; no rebuild.
- \`proxy/\`: the registry proxy Worker (CORS, token auth, the allow-list), bundled as \`wrangler deploy\`
  builds edge/worker.ts. \`cd proxy && npx wrangler deploy\`; set \`ALLOW\` to your registry and
  \`ORIGINS\` to the site's origin in \`proxy/wrangler.toml\` first (or rebuild with \`--origin\`).

The models: push the demo's layout to your registry, for example with skopeo:

\`\`\`sh
skopeo copy --preserve-digests oci:demo/layout:lm-bf16 docker://REGISTRY/demo/lm:lm-bf16
skopeo copy --preserve-digests oci:demo/layout:v1 docker://REGISTRY/demo/char-mlp:v1
skopeo copy --preserve-digests oci:demo/layout:tiny-bert-v1 docker://REGISTRY/demo/tiny-bert:tiny-bert-v1
\`\`\`

and build with \`npm run demo:build -- --registry REGISTRY/demo/lm:lm-bf16 --proxy https://PROXY\`
(\`--origin https://SITE\` for the Worker's ORIGINS), or edit the two files above.
`;
}
