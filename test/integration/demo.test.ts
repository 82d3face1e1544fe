import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../../demo/char-mlp.js";
import type { TransformersRun } from "../../demo/transformers-tab.js";
import { buildDemo, DEMO_DIR, type DemoServers, startDemo } from "../../scripts/demo-servers.js";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import { CHROMIUM } from "../../vite.config.js";
import { loadReference } from "../support/char-mlp-reference.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { writeSafetensors } from "../support/safetensors.js";
import { tensorSpecs } from "../support/tensor-model.js";

/** torch's outputs for the tiny BERT (scripts/tiny-bert.py). */
interface BertReference {
  hidden_size: number;
  sentences: { text: string; input_ids: number[]; last_hidden_state: number[][]; mean_pooled: number[] }[];
}

/** scripts/lm-reference.py's output for the demo language model (the parts read here). */
interface LmReference {
  prompt: string;
  logits_steps: number;
  greedy_tokens: number;
  bf16: { prompt_ids: number[]; logits: number[][]; greedy_ids: number[]; greedy_text: string };
}
interface LmRun {
  promptIds: number[];
  ids: number[];
  logits: number[][];
}

/** GPU and CPU logits may differ in the last bits (tanh, summation order on SwiftShader). */
const TOLERANCE = 1e-4;

/** Pulls what the page's reference box names into a storage; the status must end "ready". */
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

/**
 * The page at `url` offers `reference` (the transformer), pulls it into `storage` (blob requests
 * counted by `blobRequests`), computes the first steps' logits like the CPU reference, streams the
 * greedy text, and after a reload runs it again with no blob request.
 */
async function checkTransformer(
  browser: Browser,
  url: string,
  reference: string,
  storage: string,
  blobRequests: () => number,
  lm: LmReference,
) {
  const page = await browser.newPage();
  await page.goto(url);
  // A built page reads its configuration (demo-config.json) after it loads.
  await page.waitForFunction(
    () => document.querySelector<HTMLInputElement>("[data-testid=reference]")?.value !== "",
  );
  expect(await page.getByTestId("reference").inputValue()).toBe(reference);
  const before = blobRequests();
  await pullAndWait(page, storage);
  expect(blobRequests()).toBeGreaterThan(before);

  const gpu = (await page.evaluate(
    ([prompt, options]) =>
      (window as unknown as { demo: { lm(p: string, o: unknown): Promise<LmRun> } }).demo.lm(
        prompt as string,
        options,
      ),
    [
      lm.prompt,
      { maxTokens: lm.logits_steps, temperature: 0, topK: 1, seed: 0, logitsSteps: lm.logits_steps },
    ] as const,
  )) as LmRun;
  expect(gpu.promptIds).toEqual(lm.bf16.prompt_ids);
  expect(gpu.logits).toHaveLength(lm.logits_steps);
  gpu.logits.forEach((logits, step) => {
    const cpu = lm.bf16.logits[step] as number[];
    expect(logits).toHaveLength(cpu.length);
    for (let i = 0; i < cpu.length; i++)
      expect(Math.abs((logits[i] as number) - (cpu[i] as number)), `step ${step}, logit ${i}`).toBeLessThan(
        TOLERANCE,
      );
  });

  const runGreedy = async () => {
    await page.getByTestId("prompt").fill(lm.prompt);
    await page.getByTestId("temperature").fill("0");
    await page.getByTestId("count").fill(String(lm.greedy_tokens));
    await page.getByTestId("run").click();
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>("[data-testid=output]")?.dataset.done === "true",
      null,
      { timeout: 60_000 },
    );
    expect(await page.getByTestId("output").textContent()).toBe(lm.bf16.greedy_text);
    expect(await page.getByTestId("speed").textContent()).toMatch(
      new RegExp(`^${lm.bf16.greedy_ids.length} tokens at [0-9.]+ tokens/s$`),
    );
  };
  await runGreedy();

  await page.reload();
  await page.waitForFunction(
    () => document.querySelector<HTMLInputElement>("[data-testid=reference]")?.value !== "",
  );
  const afterFirst = blobRequests();
  await pullAndWait(page, storage);
  expect(blobRequests()).toBe(afterFirst);
  await runGreedy();
  await page.close();
}

const readLm = async (): Promise<LmReference> =>
  JSON.parse(await readFile(join(import.meta.dirname, "../fixtures/lm/reference.json"), "utf8"));

describe("the demo page, end to end in Chromium", () => {
  let demo: DemoServers;
  let browser: Browser;
  let reference: (context: number[]) => Float32Array;
  let lm: LmReference;

  beforeAll(async () => {
    demo = await startDemo({ port: 0 });
    browser = await chromium.launch(CHROMIUM);
    reference = await loadReference();
    lm = await readLm();
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it.each(["opfs", "idb"])(
    "pulls the default model, the transformer, into %s, streams its greedy text like the CPU reference, and reopens it from storage",
    async (storage) => {
      expect(demo.reference).toMatch(/\/demo\/lm:lm-bf16$/);
      await checkTransformer(browser, demo.url, demo.reference, storage, demo.blobRequests, lm);
    },
  );

  it("still runs the character MLP (tag v1) on WebGPU like the CPU reference", async () => {
    const page = await browser.newPage();
    await page.goto(`${demo.url}?ref=${encodeURIComponent(demo.charMlpReference)}`);
    expect(await page.getByTestId("reference").inputValue()).toBe(demo.charMlpReference);
    await pullAndWait(page, "memory");
    expect(await page.getByTestId("prompt").isVisible()).toBe(false);

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
      () => document.querySelector<HTMLElement>("[data-testid=output]")?.dataset.done === "true",
    );
    const expected = await generate(reference, 10, 7);
    expect(await page.getByTestId("output").textContent()).toBe(expected.words.join(" "));
    await page.close();
  });

  it("shows a healthy pull of a model it has no kernels for (the tiny BERT) as ready, with its card, and says it runs only its own architectures", async () => {
    const page = await browser.newPage();
    await page.goto(`${demo.url}?ref=${encodeURIComponent(demo.transformersReference)}`);
    await pullAndWait(page, "memory");
    expect(await page.getByTestId("status").textContent()).toMatch(/not run here \(its model_type is "bert"/);
    expect(await page.locator("#gpu-info").textContent()).toMatch(
      /^This page runs only its own architectures/,
    );
    expect(await page.getByTestId("run").isDisabled()).toBe(true);
    // Its card lists its files (an ONNX graph: no safetensors, so no tensor table).
    expect(await page.locator("#model-files").textContent()).toContain("onnx/model.onnx");
    await page.close();
  });

  it("runs the tiny BERT pulled through the transformers.js adapter like torch, and reloads it from OPFS with no blob request", async () => {
    await checkTransformersTab(
      browser,
      demo.url,
      demo.transformersReference,
      () => demo.blobRequests(),
      "demo",
    );
  }, 180_000);
});

/**
 * The page at `url` opens its transformers.js tab on `reference` (the tiny BERT), loads it into
 * OPFS through the adapter (blob requests counted by `blobRequests`), embeds like torch, and after
 * a reload loads it again from the store with no blob request; nothing comes from another host.
 */
async function checkTransformersTab(
  browser: Browser,
  url: string,
  reference: string,
  blobRequests: () => number,
  label: string,
) {
  const bert: BertReference = JSON.parse(
    await readFile(join(import.meta.dirname, "../fixtures/tiny-bert/reference.json"), "utf8"),
  );
  type Sentence = BertReference["sentences"][number];
  const [a, b, c] = bert.sentences as [Sentence, Sentence, Sentence];
  const page = await browser.newPage();
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(url);
  // The WebGPU tab is the default; transformers.js is not loaded until its tab opens.
  expect(await page.getByTestId("panel-webgpu").isVisible()).toBe(true);
  expect(await page.getByTestId("panel-transformers").isVisible()).toBe(false);
  expect(requests.some((u) => u.includes("transformers"))).toBe(false);
  await page.getByTestId("tab-transformers").click();
  expect(await page.getByTestId("panel-webgpu").isVisible()).toBe(false);
  expect(await page.getByTestId("tf-reference").inputValue()).toBe(reference);
  expect(page.url()).toMatch(/#transformers$/);

  const loadAndWait = async () => {
    await page.getByTestId("tf-storage").selectOption("opfs");
    await page.getByTestId("tf-text-a").fill(a.text);
    await page.getByTestId("tf-text-b").fill(b.text);
    await page.getByTestId("tf-load").click();
    await page.waitForFunction(
      () => /^(ready|failed)/.test(document.querySelector("[data-testid=tf-status]")?.textContent ?? ""),
      null,
      { timeout: 90_000 },
    );
    expect(await page.getByTestId("tf-status").textContent()).toMatch(/^ready/);
    const run = (await page.evaluate(() =>
      (
        window as unknown as { demo: { transformers(): Promise<TransformersRun | undefined> } }
      ).demo.transformers(),
    )) as TransformersRun;
    const states = await page
      .getByTestId("tf-files")
      .locator("tbody tr")
      .evaluateAll((rows) => rows.map((r) => [r.children[0]?.textContent, r.children[1]?.textContent]));
    return { run, states: Object.fromEntries(states) };
  };

  const before = blobRequests();
  const first = await loadAndWait();
  // The OCI config blob and the four files, each fetched once and verified into the store.
  expect(blobRequests() - before).toBe(5);
  expect(first.states).toEqual({
    "(model config)": "verified → stored",
    "config.json": "verified → stored",
    "onnx/model.onnx": "verified → stored",
    "tokenizer.json": "verified → stored",
    "tokenizer_config.json": "verified → stored",
  });
  expect(first.run.reference).toBe(reference);

  const TOLERANCE_BERT = 1e-4;
  let worst = 0;
  const check = (run: TransformersRun, wantA = a, wantB = b) => {
    for (const [got, want] of [
      [run.a, wantA],
      [run.b, wantB],
    ] as const) {
      expect(got.text).toBe(want.text);
      expect(got.dims).toEqual([1, want.input_ids.length, bert.hidden_size]);
      const hidden = want.last_hidden_state.flat();
      expect(got.hidden).toHaveLength(hidden.length);
      expect(got.pooled).toHaveLength(bert.hidden_size);
      hidden.forEach((v, i) => {
        worst = Math.max(worst, Math.abs((got.hidden[i] as number) - v));
      });
      want.mean_pooled.forEach((v, i) => {
        worst = Math.max(worst, Math.abs((got.pooled[i] as number) - v));
      });
    }
    const dot = wantA.mean_pooled.reduce((n, v, i) => n + v * (wantB.mean_pooled[i] as number), 0);
    const norm = (v: number[]) => Math.sqrt(v.reduce((n, x) => n + x * x, 0));
    const torchCosine = dot / (norm(wantA.mean_pooled) * norm(wantB.mean_pooled));
    expect(Math.abs(run.cosine - torchCosine)).toBeLessThan(TOLERANCE_BERT);
    return torchCosine;
  };
  const torchCosine = check(first.run);
  const firstWorst = worst;
  expect(worst).toBeLessThan(TOLERANCE_BERT);
  expect(await page.getByTestId("tf-cosine").textContent()).toBe(torchCosine.toFixed(4));
  expect(await page.getByTestId("tf-dims-a").textContent()).toBe(
    `[1, ${a.input_ids.length}, ${bert.hidden_size}]`,
  );
  expect(await page.getByTestId("tf-dims-b").textContent()).toBe(
    `[1, ${b.input_ids.length}, ${bert.hidden_size}]`,
  );
  // The Embed button runs the loaded pipeline again, on what the text boxes hold now.
  await page.getByTestId("tf-text-b").fill(c.text);
  await page.getByTestId("tf-embed").click();
  await page.waitForFunction(
    (dims) => document.querySelector("[data-testid=tf-dims-b]")?.textContent === dims,
    `[1, ${c.input_ids.length}, ${bert.hidden_size}]`,
  );
  const again = (await page.evaluate(() =>
    (
      window as unknown as { demo: { transformers(): Promise<TransformersRun | undefined> } }
    ).demo.transformers(),
  )) as TransformersRun;
  check(again, a, c);
  expect(worst).toBeLessThan(TOLERANCE_BERT);
  expect(await page.getByTestId("tf-timing").textContent()).toMatch(/^embedded both in \d+ ms$/);

  // The model is in the page's store, listed by the Cache panel of the other tab.
  await page.waitForFunction(
    (ref) => document.querySelector("#cached")?.textContent?.includes(ref),
    reference,
  );

  // Everything came from this machine: the demo's servers and onnxruntime-web's own wasm, no CDN,
  // and nothing from transformers.js's remote host (an oci: id is answered by the adapter alone).
  const remote = requests.filter((u) => {
    const url = new URL(u);
    if (url.protocol === "blob:" || url.protocol === "data:") return false; // made in the page
    return url.hostname !== "localhost" && url.hostname !== "127.0.0.1";
  });
  expect(remote).toEqual([]);
  expect(requests.some((u) => /\/ort-wasm-simd-threaded\.asyncify[^/]*\.wasm$/.test(u))).toBe(true);

  await page.reload();
  await page.waitForFunction(() => document.querySelector("[data-testid=tf-status]")?.textContent === "idle");
  expect(await page.getByTestId("panel-transformers").isVisible()).toBe(true);
  const afterFirst = blobRequests();
  const second = await loadAndWait();
  expect(blobRequests()).toBe(afterFirst);
  expect(Object.values(second.states)).toEqual(Array(5).fill("in store"));
  worst = 0;
  check(second.run);
  expect(worst).toBeLessThan(TOLERANCE_BERT);
  expect(second.run.a.hidden).toEqual(first.run.a.hidden);
  console.log(
    `${label} transformers.js tab: max |difference| from torch ${firstWorst.toExponential(2)} (after the reload ${worst.toExponential(2)}); first output ${first.run.firstOutputMs?.toFixed(0)} ms after Load (pull of 5 blobs), ${second.run.firstOutputMs?.toFixed(0)} ms after a reload (0 blob requests)`,
  );
  await page.close();
}

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

/** A plain static file server (no Vite, no transforms): what any host of the built site does. */
async function serveStatic(
  dir: string,
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const types: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".svg": "image/svg+xml",
  };
  const requests: string[] = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(path);
    const file = normalize(join(dir, path.endsWith("/") ? `${path}index.html` : path));
    try {
      if (!file.startsWith(dir)) throw new Error("outside the site");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("the built demo (npm run demo:build) on a plain static server, through the proxy, from the real registry", () => {
  let registry: TestRegistry;
  let proxy: RunningServer;
  let site: Awaited<ReturnType<typeof serveStatic>>;
  let out: string;
  let browser: Browser;
  let blobRequests = 0;
  let reference: string;
  let bert: string;

  beforeAll(async () => {
    registry = await startRegistry();
    reference = `${registry.host}/demo/lm:lm-bf16`;
    bert = `${registry.host}/demo/tiny-bert:v1`;
    // skopeo, an independent client, pushes the committed layout's transformer.
    await run("skopeo", [
      "copy",
      "--quiet",
      "--preserve-digests",
      "--dest-tls-verify=false",
      `oci:${join(DEMO_DIR, "layout")}:lm-bf16`,
      `docker://${reference}`,
    ]);
    await run("skopeo", [
      "copy",
      "--quiet",
      "--preserve-digests",
      "--dest-tls-verify=false",
      `oci:${join(DEMO_DIR, "layout")}:tiny-bert-v1`,
      `docker://${bert}`,
    ]);
    // Another safetensors model, of an architecture the page has no kernels for, packed by our CLI.
    const other = await mkdtemp(join(tmpdir(), "oml-demo-other-"));
    const model = join(other, "model");
    await mkdir(model);
    await writeFile(join(model, "config.json"), JSON.stringify({ model_type: "llama", hidden_size: 16 }));
    await writeFile(join(model, "model.safetensors"), writeSafetensors(tensorSpecs()));
    await run(process.execPath, [CLI, "pack", model, "--layout", `${join(other, "layout")}:v1`]);
    await run("skopeo", [
      "copy",
      "--quiet",
      "--preserve-digests",
      "--dest-tls-verify=false",
      `oci:${join(other, "layout")}:v1`,
      `docker://${registry.host}/other/llama:v1`,
    ]);
    await rm(other, { recursive: true, force: true });
    proxy = await serveRegistryProxy({
      allow: [registry.host],
      port: 0,
      fetch: (input, init) => {
        const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
        if (url.includes("/blobs/")) blobRequests++;
        return fetch(input, init);
      },
    });
    out = await mkdtemp(join(tmpdir(), "oml-demo-build-"));
    // The Worker's build is wrangler's (test/integration/wrangler.test.ts); here the proxy is Node's.
    const built = await buildDemo({
      outDir: out,
      worker: false,
      config: { reference, transformers: bert, proxy: proxy.url },
    });
    site = await serveStatic(built.site);
    browser = await chromium.launch(CHROMIUM);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await proxy?.close();
    await registry?.stop();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it("is the page alone (lm.html, the test page, is left out), configured by demo-config.json", async () => {
    const files = await readdir(join(out, "site"));
    expect(files).toContain("index.html");
    expect(files).not.toContain("lm.html");
    expect(JSON.parse(await readFile(join(out, "site", "demo-config.json"), "utf8"))).toEqual({
      reference,
      charMlp: "",
      transformers: bert,
      proxy: proxy.url,
    });
  });

  it("runs the tiny BERT in its transformers.js tab like torch, with ONNX Runtime's wasm from the built site, and reloads it from OPFS with no blob request", async () => {
    await checkTransformersTab(browser, site.url, bert, () => blobRequests, "built demo");
    expect(site.requests.some((p) => /^\/assets\/ort-wasm-simd-threaded\.asyncify[^/]*\.wasm$/.test(p))).toBe(
      true,
    );
  }, 180_000);

  it("pulls the transformer into OPFS, streams its greedy text like the CPU reference, and after a reload sends no blob request", async () => {
    await checkTransformer(browser, site.url, reference, "opfs", () => blobRequests, await readLm());
    // The page came from the static server: built files, no Vite module (/@vite/, .ts) among them.
    expect(site.requests).toContain("/demo-config.json");
    expect(site.requests.filter((p) => p.startsWith("/@") || p.endsWith(".ts"))).toEqual([]);
  }, 120_000);

  it("shows another architecture's safetensors model as ready, with its card, files and tensor table, and says it runs only its own", async () => {
    const page = await browser.newPage();
    const other = `${registry.host}/other/llama:v1`;
    await page.goto(`${site.url}?ref=${encodeURIComponent(other)}`);
    await pullAndWait(page, "memory");
    expect(await page.getByTestId("status").textContent()).toBe(
      `ready: ${other} stored in memory; not run here (its model_type is "llama", not "gpt2")`,
    );
    expect(await page.locator("#gpu-info").textContent()).toMatch(
      /^This page runs only its own architectures/,
    );
    expect(await page.getByTestId("run").isDisabled()).toBe(true);
    expect(await page.locator("#model-files").textContent()).toContain("model.safetensors");
    const rows = await page
      .locator("#tensors tbody tr")
      .evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    expect(rows).toEqual(
      tensorSpecs().map((t) => [t.name, t.dtype, `[${t.shape.join(", ")}]`, String(t.data?.byteLength)]),
    );
    await page.close();
  });
});
