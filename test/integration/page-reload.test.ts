import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM } from "../../vite.config.js";

const blob = randomBytes(6 * 1024 * 1024 + 7);
const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;

describe("in Chromium, a push cut off by the server resumes after a page reload", () => {
  let server: Server;
  let origin: string;
  let browser: Browser;
  let cutNext = false;
  let lastStart = -1;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [join(import.meta.dirname, "../pages/resume-page.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      write: false,
      logLevel: "error",
    });
    const script = bundle.outputFiles[0]?.text ?? "";
    server = createServer((req, res) => {
      if (req.url === "/")
        return void res
          .writeHead(200, { "content-type": "text/html" })
          .end('<script type="module" src="/page.js"></script>');
      if (req.url === "/page.js")
        return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
      if (req.url !== "/blob") return void res.writeHead(404).end();
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
      const body = blob.subarray(start);
      res.writeHead(start ? 206 : 200, {
        "content-length": body.byteLength,
        ...(start ? { "content-range": `bytes ${start}-${blob.byteLength - 1}/${blob.byteLength}` } : {}),
      });
      if (cutNext) {
        cutNext = false;
        const part = body.subarray(0, Math.floor(body.byteLength / 2));
        res.write(part, () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      lastStart = start;
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    origin = `http://localhost:${typeof address === "object" && address ? address.port : 0}`;
    browser = await chromium.launch(CHROMIUM);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  it.each(["opfs", "idb"] as const)("%s", async (kind) => {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => typeof window.pushBlob === "function");
    cutNext = true;
    const first = await page.evaluate(([k, d, s]) => window.pushBlob(k, d, s), [
      kind,
      digest,
      blob.byteLength,
    ] as const);
    expect(first.code).toMatch(/NETWORK|SIZE_MISMATCH/);

    await page.reload();
    await page.waitForFunction(() => typeof window.pushBlob === "function");
    const second = await page.evaluate(([k, d, s]) => window.pushBlob(k, d, s), [
      kind,
      digest,
      blob.byteLength,
    ] as const);
    expect(second.existed).toBe(false);
    expect(second.resumedFrom).toBeGreaterThan(0);
    // After the reload only the missing bytes were asked for: from exactly where the store stopped.
    expect(lastStart).toBe(second.resumedFrom);
    expect(second.fetched).toBe(blob.byteLength - (second.resumedFrom as number));
    expect(
      await page.evaluate(([k, d, s]) => window.readBlob(k, d, s), [kind, digest, blob.byteLength] as const),
    ).toBe(digest);
    await page.close();
  });
});
