import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { CHROMIUM } from "../../vite.config.js";

export interface TestPage {
  /** `http://localhost:PORT` — a secure context, as OPFS needs. */
  origin: string;
  browser: Browser;
  /** A tab: in the on-disk profile when `profile` was asked for, else in a fresh incognito context. */
  newTab(): Promise<Page>;
  close(): Promise<void>;
}

export interface ServePageOptions {
  /** Answers any path but the page and its script. */
  extra?: (req: IncomingMessage, res: ServerResponse) => void;
  /** More Chromium flags. */
  args?: string[];
  /** A Content-Security-Policy header for the page. */
  csp?: string;
  /**
   * Tabs in a persistent profile on disk, as users have, instead of incognito contexts (whose OPFS
   * and IndexedDB live in the browser's memory): what benchmarks must measure.
   */
  profile?: boolean;
}

/**
 * Bundles `entry` (TypeScript, web APIs only) and serves it as the only script of a page on
 * localhost; starts Debian's Chromium.
 */
export async function servePage(entry: string, options: ServePageOptions = {}): Promise<TestPage> {
  const extra = options.extra ?? ((_, res) => void res.writeHead(404).end());
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "error",
  });
  const script = bundle.outputFiles[0]?.text ?? "";
  const server: Server = createServer((req, res) => {
    if (req.url === "/")
      return void res
        .writeHead(200, {
          "content-type": "text/html",
          ...(options.csp ? { "content-security-policy": options.csp } : {}),
        })
        .end('<script type="module" src="/page.js"></script>');
    if (req.url === "/page.js")
      return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    extra(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const origin = `http://localhost:${typeof address === "object" && address ? address.port : 0}`;
  const launch = { ...CHROMIUM, args: [...CHROMIUM.args, ...(options.args ?? [])] };
  let profile: { dir: string; context: BrowserContext } | undefined;
  let browser: Browser;
  if (options.profile) {
    const dir = await mkdtemp(join(tmpdir(), "oml-chromium-profile-"));
    const context = await chromium.launchPersistentContext(dir, launch);
    profile = { dir, context };
    browser = context.browser() as Browser;
  } else {
    browser = await chromium.launch(launch);
  }
  return {
    origin,
    browser,
    newTab: () => (profile ? profile.context.newPage() : browser.newPage()),
    close: async () => {
      await (profile ? profile.context.close() : browser.close());
      if (profile) await rm(profile.dir, { recursive: true, force: true });
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
