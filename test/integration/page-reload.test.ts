import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { servePage, type TestPage } from "../support/page.js";

const blob = randomBytes(6 * 1024 * 1024 + 7);
const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;

describe("in Chromium, a push cut off by the server resumes after a page reload", () => {
  let page: TestPage;
  let cutNext = false;
  let lastStart = -1;

  beforeAll(async () => {
    page = await servePage(join(import.meta.dirname, "../pages/resume-page.ts"), {
      extra: (req, res) => {
        if (req.url !== "/blob") return void res.writeHead(404).end();
        const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
        const body = blob.subarray(start);
        res.writeHead(start ? 206 : 200, {
          "content-length": body.byteLength,
          ...(start ? { "content-range": `bytes ${start}-${blob.byteLength - 1}/${blob.byteLength}` } : {}),
        });
        if (cutNext) {
          cutNext = false;
          res.write(body.subarray(0, Math.floor(body.byteLength / 2)), () =>
            setTimeout(() => res.socket?.destroy(), 50),
          );
          return;
        }
        lastStart = start;
        res.end(body);
      },
    });
  });
  afterAll(() => page?.close());

  it.each(["opfs", "idb"] as const)("%s", async (kind) => {
    const tab = await page.browser.newPage();
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.pushBlob === "function");
    cutNext = true;
    const first = await tab.evaluate(([k, d, s]) => window.pushBlob(k, d, s), [
      kind,
      digest,
      blob.byteLength,
    ] as const);
    expect(first.code).toMatch(/NETWORK|SIZE_MISMATCH/);

    await tab.reload();
    await tab.waitForFunction(() => typeof window.pushBlob === "function");
    const second = await tab.evaluate(([k, d, s]) => window.pushBlob(k, d, s), [
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
      await tab.evaluate(([k, d, s]) => window.readBlob(k, d, s), [kind, digest, blob.byteLength] as const),
    ).toBe(digest);
    await tab.close();
  });
});
