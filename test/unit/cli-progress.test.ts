import { PassThrough } from "node:stream";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import type { ImageManifest, PullEvent } from "../../src/index.js";
import { OciError } from "../../src/index.js";
import { formatDuration, formatRate, formatSize } from "../../src/node/cli/format.js";
import { archiveKind, eta, layerName, pullReporter, RateMeter } from "../../src/node/cli/progress.js";

const MiB = 1024 * 1024;
const CONFIG = `sha256:${"c".repeat(64)}`;
const WEIGHTS = `sha256:${"a".repeat(64)}`;
const ARCHIVE = `sha256:${"b".repeat(64)}`;
const MANIFEST: ImageManifest = {
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.cncf.model.config.v1+json", digest: CONFIG, size: 512 },
  layers: [
    { mediaType: "application/vnd.cncf.model.weight.v1.raw", digest: WEIGHTS, size: 10 * MiB },
    { mediaType: "application/vnd.cncf.model.weight.config.v1.tar+gzip", digest: ARCHIVE, size: 2 * MiB },
  ],
};

describe("sizes, rates and times for people", () => {
  it("formats sizes in binary units with one decimal, bytes as they are", () => {
    expect(formatSize(0)).toBe("0 B");
    expect(formatSize(1023)).toBe("1023 B");
    expect(formatSize(1024)).toBe("1.0 KiB");
    expect(formatSize(58858496)).toBe("56.1 MiB");
    expect(formatSize(209715544)).toBe("200.0 MiB");
    expect(formatSize(1.5 * 1024 ** 3)).toBe("1.5 GiB");
    // just under a unit rounds into it rather than reading "1024.0 KiB"
    expect(formatSize(1024 * 1024 - 10)).toBe("1.0 MiB");
    expect(formatSize(3 * 1024 ** 4)).toBe("3.0 TiB");
  });

  it("formats rates, and says -- when there is none", () => {
    expect(formatRate(12.3 * MiB)).toBe("12.3 MiB/s");
    expect(formatRate(500)).toBe("500 B/s");
    expect(formatRate(undefined)).toBe("--");
    expect(formatRate(Number.POSITIVE_INFINITY)).toBe("--");
  });

  it("formats durations as s, m and h, rounding up", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(0.2)).toBe("1s");
    expect(formatDuration(42)).toBe("42s");
    expect(formatDuration(59.5)).toBe("1m00s");
    expect(formatDuration(60)).toBe("1m00s");
    expect(formatDuration(185)).toBe("3m05s");
    expect(formatDuration(3600)).toBe("1h00m");
    expect(formatDuration(7620)).toBe("2h07m");
    expect(formatDuration(500 * 3600)).toBe(">99h");
    expect(formatDuration(undefined)).toBe("--");
    expect(formatDuration(Number.NaN)).toBe("--");
  });

  it("measures a rate over its window from the first count on, and an ETA from it", () => {
    const meter = new RateMeter(5_000);
    meter.add(0, 100 * MiB); // a resumed blob: its offset is no speed
    expect(meter.rate()).toBeUndefined();
    meter.add(100, 101 * MiB);
    expect(meter.rate()).toBeUndefined(); // under 250 ms to tell from
    meter.add(1_000, 110 * MiB);
    expect(meter.rate()).toBeCloseTo(10 * MiB, 0);
    // the window forgets the past: a stall shows as a falling rate, not the average since the start
    meter.add(10_000, 110 * MiB);
    meter.add(11_000, 110 * MiB);
    expect(meter.rate()).toBe(0);
    expect(eta(50 * MiB, 10 * MiB)).toBe(5);
    expect(eta(50 * MiB, 0)).toBeUndefined();
    expect(eta(50 * MiB, undefined)).toBeUndefined();
    expect(eta(0, undefined)).toBe(0);
  });
});

describe("layer names", () => {
  it("names the config blob and archive layers by role, files by their path", () => {
    expect(layerName(CONFIG, undefined, MANIFEST)).toBe("config");
    expect(layerName(WEIGHTS, "model.safetensors", MANIFEST)).toBe("model.safetensors");
    expect(layerName(ARCHIVE, undefined, MANIFEST)).toBe("config archive (gzip)");
    expect(layerName(ARCHIVE, "tokenizer", MANIFEST)).toBe("config archive (gzip) tokenizer");
    // without the manifest only the digest's start is left
    expect(layerName(CONFIG, undefined)).toBe("sha256:cccccccccccc");
  });

  it("tells what a tar media type holds from the word before its version and .tar", () => {
    expect(archiveKind("application/vnd.cncf.model.weight.v1.tar")).toBe("weight archive");
    expect(archiveKind("application/vnd.cncf.model.weight.v1.tar+zstd")).toBe("weight archive (zstd)");
    expect(archiveKind("application/vnd.docker.ai.vllm.config.tar")).toBe("config archive");
    expect(archiveKind("application/vnd.docker.ai.dir.tar")).toBe("dir archive");
    expect(archiveKind("application/vnd.kitops.modelkit.docs.v1.tar+gzip")).toBe("docs archive (gzip)");
    expect(archiveKind("application/vnd.oci.image.layer.v1.tar+gzip")).toBe("layer archive (gzip)");
    expect(archiveKind("application/vnd.oci.image.layer.v1.tar")).toBe("layer archive");
    expect(archiveKind("application/vnd.docker.ai.gguf.v3")).toBeUndefined();
    expect(archiveKind("application/vnd.cncf.model.weight.v1.raw")).toBeUndefined();
  });
});

/** A reporter on a fake stderr and clock, fed a pull's events. */
function feed(options: { json?: boolean; plainInterval?: number }, events: (PullEvent | number)[]) {
  let t = 0;
  let stderr = "";
  const reporter = pullReporter(
    {
      stderr: (s) => {
        stderr += s;
      },
    },
    { ...options, now: () => t },
  );
  reporter.manifest({ digest: "sha256:manifest", manifest: MANIFEST });
  for (const event of events) {
    if (typeof event === "number") t = event;
    else reporter.onEvent(event);
  }
  return { reporter, stderr: () => stderr };
}

const RESOLVE: PullEvent = {
  type: "resolve",
  reference: "127.0.0.1:5000/m:v1",
  digest: "sha256:manifest",
  format: "modelpack",
  layers: 3,
  totalBytes: 512 + 12 * MiB,
  storedBytes: 2 * MiB,
};
const progress = (digest: string, loaded: number, total: number, overall = 0): PullEvent => ({
  type: "progress",
  digest,
  loaded,
  total,
  overallLoaded: overall,
  overallTotal: RESOLVE.type === "resolve" ? RESOLVE.totalBytes : 0,
});

/** A pull: config fetched, the archive already stored, the weights resumed at 4 MiB and fetched at 4 MiB/s. */
const PULL: (PullEvent | number)[] = [
  RESOLVE,
  { type: "layer-start", digest: CONFIG, path: undefined, size: 512, fromCache: false },
  progress(CONFIG, 0, 512),
  progress(CONFIG, 512, 512),
  { type: "layer-done", digest: CONFIG, path: undefined },
  { type: "layer-start", digest: ARCHIVE, path: undefined, size: 2 * MiB, fromCache: true },
  { type: "layer-done", digest: ARCHIVE, path: undefined },
  { type: "layer-start", digest: WEIGHTS, path: "model.safetensors", size: 10 * MiB, fromCache: false },
  progress(WEIGHTS, 4 * MiB, 10 * MiB),
  ...Array.from({ length: 30 }, (_, i) => [
    (i + 1) * 50,
    progress(WEIGHTS, 4 * MiB + Math.round(((i + 1) * 6 * MiB) / 30), 10 * MiB),
  ]).flat(),
  { type: "layer-done", digest: WEIGHTS, path: "model.safetensors" },
  { type: "extract", path: "config.json", digest: `sha256:${"d".repeat(64)}`, size: 2048 },
  { type: "done", fetchedBytes: 512 + 6 * MiB, reusedBytes: 2 * MiB, seconds: 3 },
];

describe("the pull reporter", () => {
  it("writes plain lines off a terminal: no carriage return, human sizes, roles, speed, resume", () => {
    const { stderr } = feed({ plainInterval: 500 }, PULL);
    const text = stderr();
    expect(text).not.toContain("\r");
    expect(text).not.toMatch(/\d+\/\d+ bytes/);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toBe("pulling 127.0.0.1:5000/m:v1 (modelpack, 3 blobs, 12.0 MiB, 2.0 MiB stored)");
    expect(lines).toContain("  config archive (gzip)  2.0 MiB  already stored");
    // 6 MiB in 1.5 s: 4 MiB/s, resumed at 4 MiB
    expect(lines).toContain("  model.safetensors  10.0 MiB  in 1.5s (4.0 MiB/s, resumed at 4.0 MiB)");
    expect(lines).toContain("  config  512 B  in 0.0s (500.0 KiB/s)");
    // total lines at most every 500 ms: at 0.5 s, 1 s and 1.5 s, each with speed and ETA
    const totals = lines.filter((l) => /^ {2}\d.* \/ 12\.0 MiB \(\d+%\), /.test(l));
    expect(totals).toHaveLength(3);
    expect(totals[0]).toBe("  8.0 MiB / 12.0 MiB (66%), 4.0 MiB/s, ETA 1s");
    expect(totals[2]).toBe("  12.0 MiB / 12.0 MiB (100%), 4.0 MiB/s, ETA 0s");
    expect(lines).toContain("  extracted config.json (2.0 KiB)");
    expect(lines[lines.length - 1]).toBe("done: fetched 6.0 MiB, reused 2.0 MiB in 3.0 s");
  });

  it("streams NDJSON in Docker Model Runner's shape with --json, a line per 100 ms or MiB a layer", () => {
    const { stderr, reporter } = feed({ json: true }, PULL);
    reporter.fail(new OciError("NETWORK", "Cannot pull: the connection failed"));
    const lines = stderr().trimEnd().split("\n");
    const messages = lines.map((l) => JSON.parse(l));
    for (const m of messages) {
      expect(m.mode).toBe("pull");
      expect(m.total).toBe(512 + 12 * MiB);
      expect(typeof m.message).toBe("string");
      expect(Number.isInteger(m.current)).toBe(true);
    }
    const progressOf = (id: string) =>
      messages.filter((m) => m.type === "progress" && m.layer.id === id).map((m) => m.layer.current);
    expect(progressOf(CONFIG)).toEqual([0, 512]);
    expect(progressOf(ARCHIVE)).toEqual([2 * MiB]);
    const weights = progressOf(WEIGHTS);
    expect(weights[0]).toBe(0);
    expect(weights[weights.length - 1]).toBe(10 * MiB);
    // the start, the resume offset (over 1 MiB at once), then 30 updates of 0.2 MiB every 50 ms of
    // which every other passes the pace (100 ms): 2 + 15 lines, the last the whole layer
    expect(weights).toHaveLength(17);
    expect(weights[1]).toBe(4 * MiB);
    expect(new Set(weights).size).toBe(weights.length);
    const first = messages.find((m) => m.layer?.id === WEIGHTS);
    expect(first).toEqual({
      type: "progress",
      message: "Downloaded: 0.00 MB",
      total: 512 + 12 * MiB,
      current: 2 * MiB + 512,
      layer: { id: WEIGHTS, size: 10 * MiB, current: 0, name: "model.safetensors" },
      mode: "pull",
    });
    const names = new Set(messages.filter((m) => m.layer).map((m) => m.layer.name));
    expect(names).toEqual(new Set(["config", "config archive (gzip)", "model.safetensors"]));
    expect(messages.at(-2)).toMatchObject({ type: "success", current: 512 + 12 * MiB });
    expect(messages.at(-1)).toMatchObject({ type: "error", code: "NETWORK" });
    expect(stderr()).not.toContain("\r");
  });

  it("on a terminal: a total bar and bars for layers in flight, each finished layer a line above", async () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 160 });
    let written = "";
    stream.on("data", (chunk: Buffer) => {
      written += chunk.toString("utf8");
    });
    let t = 0;
    const reporter = pullReporter(
      { stderr: () => {}, terminal: stream as unknown as NodeJS.WriteStream },
      { now: () => t },
    );
    reporter.manifest({ digest: "sha256:manifest", manifest: MANIFEST });
    for (const event of PULL.slice(0, -5)) {
      if (typeof event === "number") t = event;
      else reporter.onEvent(event);
    }
    // a redraw mid-layer, as the bars' own timer would
    await new Promise((resolve) => setTimeout(resolve, 250));
    const midway = stripVTControlCharacters(written);
    expect(midway).toMatch(/total {24}\| 11\.8 MiB \/ 12\.0 MiB \| 4\.0 MiB\/s, ETA 1s/);
    expect(midway).toMatch(/model\.safetensors {12}\| 9\.8 MiB \/ 10\.0 MiB \| 4\.0 MiB\/s, ETA 1s/);
    for (const event of PULL.slice(-5)) {
      if (typeof event === "number") t = event;
      else reporter.onEvent(event);
    }
    reporter.stop();
    const text = stripVTControlCharacters(written);
    expect(text).toContain("pulling 127.0.0.1:5000/m:v1 (modelpack, 3 blobs, 12.0 MiB, 2.0 MiB stored)");
    expect(text).toContain("  config archive (gzip)  2.0 MiB  already stored");
    expect(text).toContain("  model.safetensors  10.0 MiB  in 1.5s (4.0 MiB/s, resumed at 4.0 MiB)");
    expect(text).toContain("done: fetched 6.0 MiB, reused 2.0 MiB in 3.0 s");
    expect(text).not.toMatch(/\d+\/\d+ bytes/);
  });
});
