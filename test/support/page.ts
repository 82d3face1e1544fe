import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { CHROMIUM } from "../../vite.config.js";

export interface TestPage {
  /** `http://localhost:PORT` — a secure context, as OPFS needs. */
  origin: string;
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Bundles `entry` (TypeScript, web APIs only) and serves it as the only script of a page on
 * localhost, with `extra` answering any other path; starts Debian's Chromium.
 */
export async function servePage(
  entry: string,
  extra: (req: IncomingMessage, res: ServerResponse) => void = (_, res) => void res.writeHead(404).end(),
  extraArgs: string[] = [],
): Promise<TestPage> {
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
        .writeHead(200, { "content-type": "text/html" })
        .end('<script type="module" src="/page.js"></script>');
    if (req.url === "/page.js")
      return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    extra(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const origin = `http://localhost:${typeof address === "object" && address ? address.port : 0}`;
  const browser = await chromium.launch({ ...CHROMIUM, args: [...CHROMIUM.args, ...extraArgs] });
  return {
    origin,
    browser,
    close: async () => {
      await browser.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
