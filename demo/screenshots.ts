// The README's screenshots of the demo page: the transformer pulled (into memory) and run with the
// page's defaults, at a desktop width (demo/screenshot.png) and a phone's (demo/screenshot-phone.png);
// and the transformers.js tab after its model was loaded and embedded (demo/screenshot-transformers.png).
//   npx tsx demo/screenshots.ts        (Debian's Chromium, WebGPU on SwiftShader; a few seconds)
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { DEMO_DIR, startDemo } from "../scripts/demo-servers.js";
import { CHROMIUM } from "../vite.config.js";

const demo = await startDemo({ port: 0 });
const browser = await puppeteer.launch({ executablePath: CHROMIUM.executablePath, args: CHROMIUM.args });
try {
  for (const [file, viewport] of [
    ["screenshot.png", { width: 1280, height: 900 }],
    ["screenshot-phone.png", { width: 390, height: 844, isMobile: true, hasTouch: true }],
  ] as const) {
    const page = await browser.newPage();
    await page.setViewport(viewport);
    await page.goto(demo.url, { waitUntil: "load" });
    await page.waitForFunction(() => document.querySelector<HTMLInputElement>("#reference")?.value);
    await page.select("#storage", "memory");
    await page.click("#pull");
    await page.waitForFunction(
      () => /^(ready|failed)/.test(document.querySelector("#status")?.textContent ?? ""),
      {
        timeout: 120_000,
      },
    );
    await page.click("#run");
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>("#output")?.dataset.done === "true",
      {
        timeout: 120_000,
      },
    );
    const speed = await page.$eval("#speed", (e) => e.textContent);
    await page.screenshot({ path: join(DEMO_DIR, file) as `${string}.png`, fullPage: true });
    process.stdout.write(`${file}: ${speed}\n`);
    await page.close();
  }
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(`${demo.url}#transformers`, { waitUntil: "load" });
  await page.waitForFunction(() => !document.querySelector<HTMLButtonElement>("#tf-load")?.disabled, {
    timeout: 60_000,
  });
  await page.select("#tf-storage", "memory");
  await page.click("#tf-load");
  await page.waitForFunction(
    () => /^(ready|failed)/.test(document.querySelector("#tf-status")?.textContent ?? ""),
    { timeout: 120_000 },
  );
  const status = await page.$eval("#tf-status", (e) => e.textContent);
  await page.screenshot({ path: join(DEMO_DIR, "screenshot-transformers.png"), fullPage: true });
  process.stdout.write(`screenshot-transformers.png: ${status}\n`);
  await page.close();
} finally {
  await browser.close();
  await demo.close();
}
