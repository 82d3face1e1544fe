// Debian's Firefox ESR for the integration tests: driven by puppeteer-core over WebDriver BiDi, with
// nothing downloaded (no geckodriver, no Playwright Firefox). Facts behind the choices are in
// shared/notes/firefox.md: pages must be a secure context (http://127.0.0.1), storage.persist()
// is a prompt that never settles headless unless the testing prefs answer it, and WebGPU is off on
// Linux ESR unless enabled (its adapter is Mesa's lavapipe, from mesa-vulkan-drivers).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BuildOptions, build } from "esbuild";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

export const FIREFOX = "/usr/bin/firefox-esr";

/** The prefs every test browser gets. */
export const FIREFOX_PREFS: Record<string, unknown> = {
  // navigator.storage.persist() answered "granted" instead of a prompt nobody will click.
  "dom.storageManager.prompt.testing": true,
  "dom.storageManager.prompt.testing.allow": true,
  // WebGPU, off by default on Linux ESR; the software Vulkan adapter is on the blocklist.
  "dom.webgpu.enabled": true,
  "gfx.webgpu.ignore-blocklist": true,
  // No chatter: updates, telemetry, first-run pages.
  "app.update.enabled": false,
  "browser.shell.checkDefaultBrowser": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.enabled": false,
};

export interface FirefoxPages {
  /** `http://127.0.0.1:PORT`: a secure context, as OPFS needs. */
  origin: string;
  browser: Browser;
  /**
   * A tab at `/PAGE/`, its script loaded (`ready` names a global it defines). Tabs of the default
   * context share storage and Web Locks, like the tabs of one profile; `"new"` opens a context of
   * its own.
   */
  open(page: string, ready: string, context?: "default" | "new"): Promise<Page>;
  /** What the pages threw and did not catch, for failure messages. */
  errors: string[];
  close(): Promise<void>;
}

export interface ServeFirefoxOptions {
  /** Answers any path but the pages and scripts. */
  extra?: (req: IncomingMessage, res: ServerResponse) => void;
  /** esbuild aliases for the bundles (e.g. `vitest` → an in-page runner). */
  alias?: BuildOptions["alias"];
  /** More scripts, bundled like the pages' and served at `/NAME.js` (module workers). */
  scripts?: Record<string, string>;
  /** A Content-Security-Policy header for some of the pages, by name. */
  csp?: Record<string, string>;
}

/** Bundles `entry` (web APIs only) as one ES module; also used for worker scripts. */
export async function bundle(entry: string, alias?: BuildOptions["alias"]): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "error",
    ...(alias ? { alias } : {}),
  });
  return result.outputFiles[0]?.text ?? "";
}

/**
 * Firefox ESR, headless, in a fresh profile directory (its storage on disk, as users have it), with
 * FIREFOX_PREFS and then `prefs` over them.
 */
export async function launchFirefox(
  prefs: Record<string, unknown> = {},
): Promise<{ browser: Browser; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "oml-firefox-profile-"));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: FIREFOX,
      headless: true,
      userDataDir: dir,
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...prefs },
      timeout: 30_000,
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    browser,
    async close() {
      const child = browser.process();
      // A browser that does not close within 10 s is killed: a test run must never leave one behind.
      const closed = await Promise.race([
        browser.close().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((r) => setTimeout(() => r(false), 10_000)),
      ]);
      if (!closed && child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Serves each of `pages` (name → entry, bundled) as the only script of a page at `/NAME/` on
 * 127.0.0.1, and starts Firefox.
 */
export async function serveFirefoxPages(
  pages: Record<string, string>,
  options: ServeFirefoxOptions = {},
): Promise<FirefoxPages> {
  const extra = options.extra ?? ((_, res) => void res.writeHead(404).end());
  const scripts = new Map<string, string>();
  for (const [name, path] of Object.entries(pages))
    scripts.set(`/${name}/page.js`, await bundle(path, options.alias));
  for (const [name, path] of Object.entries(options.scripts ?? {}))
    scripts.set(`/${name}.js`, await bundle(path, options.alias));
  const server: Server = createServer((req, res) => {
    const url = req.url ?? "";
    if (url.endsWith("/") && scripts.has(`${url}page.js`)) {
      const csp = options.csp?.[url.slice(1, -1)];
      return void res
        .writeHead(200, { "content-type": "text/html", ...(csp ? { "content-security-policy": csp } : {}) })
        .end('<!doctype html><script type="module" src="page.js"></script>');
    }
    const script = scripts.get(url);
    if (script !== undefined)
      return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    extra(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const origin = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  const closeServer = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  let firefox: Awaited<ReturnType<typeof launchFirefox>>;
  try {
    firefox = await launchFirefox();
  } catch (error) {
    await closeServer();
    throw error;
  }
  const errors: string[] = [];
  return {
    origin,
    browser: firefox.browser,
    errors,
    async open(page, ready, context = "default") {
      const tab =
        context === "new"
          ? await (await firefox.browser.createBrowserContext()).newPage()
          : await firefox.browser.newPage();
      tab.on("pageerror", (error) => errors.push(`${page}: ${String(error)}`));
      await tab.goto(`${origin}/${page}/`);
      await tab.waitForFunction((name) => name in globalThis, { timeout: 10_000 }, ready);
      return tab;
    },
    async close() {
      await firefox.close();
      await closeServer();
    },
  };
}
