import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../../demo/char-mlp.js";
import { type DemoServers, startDemo } from "../../scripts/demo-servers.js";
import { CHROMIUM } from "../../vite.config.js";
import { loadReference } from "../support/char-mlp-reference.js";

/** GPU and CPU logits may differ in the last bits (tanh, summation order on SwiftShader). */
const TOLERANCE = 1e-4;

describe("the demo page, end to end in Chromium", () => {
  let demo: DemoServers;
  let browser: Browser;
  let reference: (context: number[]) => Float32Array;

  beforeAll(async () => {
    demo = await startDemo({ port: 0 });
    browser = await chromium.launch(CHROMIUM);
    reference = await loadReference();
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  async function pullAndWait(page: Page, storage: string) {
    await page.getByTestId("storage").selectOption(storage);
    await page.getByTestId("pull").click();
    await page.waitForFunction(
      () => /ready|failed/.test(document.querySelector("[data-testid=status]")?.textContent ?? ""),
      null,
      { timeout: 60_000 },
    );
    expect(await page.getByTestId("status").textContent()).toMatch(/^ready/);
  }

  it.each(["opfs", "idb"])(
    "pulls the embedded model into %s, runs it on WebGPU like the CPU reference, and reopens it from storage",
    async (storage) => {
      const page = await browser.newPage();
      await page.goto(demo.url);
      expect(await page.getByTestId("reference").inputValue()).toBe(demo.reference);
      const before = demo.blobRequests();
      await pullAndWait(page, storage);
      expect(demo.blobRequests()).toBeGreaterThan(before);

      for (const context of [
        [0, 0, 0],
        [3, 1, 20],
        [19, 20, 18],
      ]) {
        const gpu = (await page.evaluate(
          (c) => (window as unknown as { demo: { logits(c: number[]): Promise<number[]> } }).demo.logits(c),
          context,
        )) as number[];
        const cpu = Array.from(reference(context));
        for (let i = 0; i < cpu.length; i++)
          expect(Math.abs((gpu[i] as number) - (cpu[i] as number)), `logit ${i} for ${context}`).toBeLessThan(
            TOLERANCE,
          );
      }

      await page.getByTestId("seed").fill("7");
      await page.getByTestId("count").fill("10");
      await page.getByTestId("run").click();
      await page.waitForFunction(
        () => (document.querySelector("[data-testid=output]")?.textContent ?? "").length > 0,
      );
      const expected = await generate(reference, 10, 7);
      expect(await page.getByTestId("output").textContent()).toBe(expected.words.join(" "));

      await page.reload();
      const afterFirst = demo.blobRequests();
      await pullAndWait(page, storage);
      expect(demo.blobRequests()).toBe(afterFirst);
      await page.close();
    },
  );
});
