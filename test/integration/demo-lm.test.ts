import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DemoServers, startDemo } from "../../scripts/demo-servers.js";
import { CHROMIUM } from "../../vite.config.js";

/** scripts/lm-reference.py's output: NumPy in float64, the whole sequence recomputed each step. */
interface Run {
  prompt_ids: number[];
  logits: number[][];
  greedy_ids: number[];
  greedy_text: string;
  greedy_min_margin: number;
  sample: { temperature: number; top_k: number; tokens: number; seed: number; ids: number[]; text: string };
}
interface Reference {
  prompt: string;
  eot: number;
  logits_steps: number;
  greedy_tokens: number;
  f32: Run;
  bf16: Run;
}
interface GpuRun {
  promptIds: number[];
  ids: number[];
  logits: number[][];
}

/**
 * The GPU computes in float32 (another summation order, SwiftShader's exp and tanh) what the
 * reference computes in float64: logits agree to this absolute difference.
 */
const TOLERANCE = 1e-4;

describe("the demo language model: pulled, run with WGSL kernels on WebGPU in Chromium, like the CPU reference", () => {
  let demo: DemoServers;
  let browser: Browser;
  let reference: Reference;
  let host: string;

  beforeAll(async () => {
    reference = JSON.parse(
      await readFile(join(import.meta.dirname, "../fixtures/lm/reference.json"), "utf8"),
    );
    demo = await startDemo({ port: 0 });
    host = demo.reference.split("/")[0] as string;
    browser = await chromium.launch(CHROMIUM);
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  async function pull(page: Page) {
    await page.getByTestId("lm-pull").click();
    await page.waitForFunction(
      () => /^(ready|failed)/.test(document.querySelector("[data-testid=lm-status]")?.textContent ?? ""),
      null,
      { timeout: 60_000 },
    );
    expect(await page.getByTestId("lm-status").textContent()).toMatch(/^ready/);
  }

  const generate = (page: Page, options: Record<string, number>) =>
    page.evaluate(
      ([prompt, o]) =>
        (window as unknown as { lm: { generate(p: string, o: unknown): Promise<GpuRun> } }).lm.generate(
          prompt as string,
          o,
        ),
      [reference.prompt, options] as const,
    ) as Promise<GpuRun>;

  function expectLike(gpu: GpuRun, want: Run) {
    expect(gpu.promptIds).toEqual(want.prompt_ids);
    expect(gpu.logits).toHaveLength(reference.logits_steps);
    let worst = 0;
    gpu.logits.forEach((logits, step) => {
      const cpu = want.logits[step] as number[];
      expect(logits).toHaveLength(cpu.length);
      for (let i = 0; i < cpu.length; i++) {
        const d = Math.abs((logits[i] as number) - (cpu[i] as number));
        worst = Math.max(worst, d);
        expect(d, `step ${step}, logit ${i}`).toBeLessThan(TOLERANCE);
      }
    });
    expect(gpu.ids).toEqual(want.greedy_ids);
    return worst;
  }

  it("has references that tell the f32 weights from the bf16 ones (so the comparison below can fail)", () => {
    const a = reference.f32.logits.flat();
    const b = reference.bf16.logits.flat();
    expect(Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))))).toBeGreaterThan(TOLERANCE);
    // Greedy picks must not hinge on float32 rounding.
    expect(reference.f32.greedy_min_margin).toBeGreaterThan(TOLERANCE);
    expect(reference.bf16.greedy_min_margin).toBeGreaterThan(TOLERANCE);
  });

  it.each([
    ["lm-f32", "f32", "Docker model-spec v0.1"],
    ["lm-bf16", "bf16", "Docker model-spec v0.1"],
    ["lm-f32-modelpack", "f32", "ModelPack"],
    ["lm-bf16-modelpack", "bf16", "ModelPack"],
  ] as const)(
    "%s (%s weights, %s): logits of the first steps, greedy and seeded top-k output",
    async (tag, dtype, _format) => {
      const want = reference[dtype];
      const page = await browser.newPage();
      await page.goto(`${demo.url}lm.html?ref=${encodeURIComponent(`${host}/demo/lm:${tag}`)}&store=memory`);
      await pull(page);
      const greedy = await generate(page, {
        maxTokens: reference.greedy_tokens,
        temperature: 0,
        topK: 1,
        seed: 1,
        logitsSteps: reference.logits_steps,
      });
      const worst = expectLike(greedy, want);
      console.info(`${tag}: largest logit difference from the reference ${worst.toExponential(2)}`);
      const sampled = await generate(page, {
        maxTokens: want.sample.tokens,
        temperature: want.sample.temperature,
        topK: want.sample.top_k,
        seed: want.sample.seed,
      });
      expect(sampled.ids).toEqual(want.sample.ids);
      // Another seed draws another text: the seed reaches the sampler.
      const other = await generate(page, {
        maxTokens: want.sample.tokens,
        temperature: want.sample.temperature,
        topK: want.sample.top_k,
        seed: want.sample.seed + 1,
      });
      expect(other.ids).not.toEqual(want.sample.ids);
      await page.close();
    },
  );

  it("streams the greedy text into the page with tokens/s, and after a reload runs from OPFS with no blob request", async () => {
    const page = await browser.newPage();
    const url = `${demo.url}lm.html?ref=${encodeURIComponent(`${host}/demo/lm:lm-bf16`)}&store=opfs`;
    await page.goto(url);
    const before = demo.blobRequests();
    await pull(page);
    expect(demo.blobRequests()).toBeGreaterThan(before);

    const runGreedy = async () => {
      await page.getByTestId("lm-prompt").fill(reference.prompt);
      await page.getByTestId("lm-temperature").fill("0");
      await page.getByTestId("lm-tokens").fill(String(reference.greedy_tokens));
      await page.getByTestId("lm-run").click();
      await page.waitForFunction(
        () => document.querySelector<HTMLElement>("[data-testid=lm-output]")?.dataset.done === "true",
        null,
        { timeout: 60_000 },
      );
      expect(await page.getByTestId("lm-output").textContent()).toBe(reference.bf16.greedy_text);
      expect(await page.getByTestId("lm-speed").textContent()).toMatch(
        new RegExp(`^${reference.bf16.greedy_ids.length} tokens at [0-9.]+ tokens/s$`),
      );
    };
    await runGreedy();

    await page.reload();
    const afterFirst = demo.blobRequests();
    await pull(page);
    expect(demo.blobRequests()).toBe(afterFirst);
    await runGreedy();
    await page.close();
  });
});
