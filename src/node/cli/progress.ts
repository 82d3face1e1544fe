import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { ImageManifest, ManifestResult, PullEvent } from "../../index.js";
import { isOciError } from "../../index.js";
import type { CliIo } from "./command.js";
import { formatDuration, formatRate, formatSize } from "./format.js";

/**
 * Bytes per second over the last `windowMs` of cumulative byte counts. The first count is where a
 * transfer starts (a resumed blob's offset), so only bytes moved since count.
 */
export class RateMeter {
  readonly #samples: { t: number; bytes: number }[] = [];
  readonly #windowMs: number;

  constructor(windowMs = 5_000) {
    this.#windowMs = windowMs;
  }

  /** Records the cumulative count `bytes` at time `t` (ms). */
  add(t: number, bytes: number): void {
    this.#samples.push({ t, bytes });
    // keep one sample at or before the window's start, so the window is always covered
    while (this.#samples.length > 2 && (this.#samples[1] as { t: number }).t <= t - this.#windowMs) {
      this.#samples.shift();
    }
  }

  /** Bytes per second, or undefined until there is a span of at least 250 ms to tell it from. */
  rate(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.t - first.t < 250) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

/** Seconds until `remaining` bytes are moved at `rate`; undefined while the rate is unknown or 0. */
export function eta(remaining: number, rate: number | undefined): number | undefined {
  if (remaining <= 0) return 0;
  return rate && rate > 0 ? remaining / rate : undefined;
}

/**
 * What a layer is, for people: "config" for the config blob, the file it becomes, or for a tar
 * layer what its media type says it holds (the word before the version and `.tar`:
 * `vnd.cncf.model.weight.v1.tar+gzip` → "weight archive (gzip)"), with its path when it has one.
 * The digest's start when nothing better is known.
 */
export function layerName(digest: string, path: string | undefined, manifest?: ImageManifest): string {
  if (manifest && digest === manifest.config.digest) return "config";
  const mediaType = manifest?.layers.find((l) => l.digest === digest)?.mediaType;
  const archive = mediaType === undefined ? undefined : archiveKind(mediaType);
  if (archive) return path === undefined ? archive : `${archive} ${path}`;
  return path ?? digest.slice(0, 19);
}

/** "weight archive (gzip)" for a tar media type, undefined for any other. */
export function archiveKind(mediaType: string): string | undefined {
  const type = (mediaType.split(";")[0] ?? "").trim().toLowerCase();
  const match = /^[^/]+\/(.+?)[.+]tar(?:\+(gzip|zstd))?$/.exec(type);
  if (!match) return undefined;
  const words = (match[1] as string).split(".").filter((w) => w !== "" && !/^v\d+(?:\.\d+)*$/.test(w));
  // `vnd.<vendor>.…`: the last word that is not the vendor's names the content
  const meaningful = words[0] === "vnd" ? words.slice(2) : words;
  const kind = meaningful[meaningful.length - 1];
  const compression = match[2] ? ` (${match[2]})` : "";
  return kind ? `${kind} archive${compression}` : `archive${compression}`;
}

interface LayerState {
  name: string;
  size: number;
  fromCache: boolean;
  /** Bytes of the blob in the store, as the pull last said. */
  loaded: number;
  /** Where this run started it (a resumed blob's offset); undefined before its first progress. */
  from: number | undefined;
  started: number;
  meter: RateMeter;
}

/** A pull's state, as its events tell it: each layer and the total, with rates. */
export class PullProgress {
  readonly layers = new Map<string, LayerState>();
  /** Bytes of the blobs the pull will have (config included), and of those stored before it. */
  total = 0;
  stored = 0;
  reference = "";
  started: number;
  readonly meter = new RateMeter();
  readonly #manifests = new Map<string, ImageManifest>();
  #manifest: ImageManifest | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.started = now();
  }

  now(): number {
    return this.#now();
  }

  /** A manifest the pull's client fetched: the one `resolve` names is how layers get their names. */
  manifest(result: Pick<ManifestResult, "digest" | "manifest">): void {
    if ("layers" in result.manifest) this.#manifests.set(result.digest, result.manifest);
  }

  /** Takes one event in; returns the layer it is about, if any. */
  take(event: PullEvent): LayerState | undefined {
    const t = this.#now();
    if (event.type === "resolve") {
      this.total = event.totalBytes;
      this.stored = event.storedBytes;
      this.reference = event.reference;
      this.#manifest = this.#manifests.get(event.digest);
      this.started = t;
      this.meter.add(t, 0);
      return undefined;
    }
    if (event.type === "layer-start") {
      const layer: LayerState = {
        name: layerName(event.digest, event.path, this.#manifest),
        size: event.size,
        fromCache: event.fromCache,
        loaded: event.fromCache ? event.size : 0,
        from: event.fromCache ? event.size : undefined,
        started: t,
        meter: new RateMeter(),
      };
      this.layers.set(event.digest, layer);
      return layer;
    }
    if (event.type === "progress") {
      const layer = this.layers.get(event.digest);
      if (!layer) return undefined;
      if (layer.from === undefined) layer.from = event.loaded;
      layer.loaded = event.loaded;
      layer.meter.add(t, event.loaded);
      this.meter.add(t, this.fetched());
      return layer;
    }
    if (event.type === "layer-done") {
      const layer = this.layers.get(event.digest);
      if (layer) {
        if (layer.from === undefined) layer.from = layer.size;
        layer.loaded = layer.size;
      }
      return layer;
    }
    return undefined;
  }

  /** Bytes this run moved from the registry so far. */
  fetched(): number {
    let n = 0;
    for (const l of this.layers.values()) if (l.from !== undefined) n += l.loaded - l.from;
    return n;
  }

  /** Bytes of the pull in the store now: what was there before, plus what each layer holds. */
  current(): number {
    let n = this.stored;
    for (const l of this.layers.values()) if (!l.fromCache) n += l.loaded;
    return Math.min(n, this.total);
  }

  rate(): number | undefined {
    return this.meter.rate();
  }

  /** "540.0 MiB / 1.2 GiB" */
  static sizes(current: number, total: number): string {
    return `${formatSize(current)} / ${formatSize(total)}`;
  }

  /** "12.3 MiB/s, ETA 42s" for a layer, or the total when no layer is given. */
  speed(layer?: LayerState): string {
    const rate = layer ? layer.meter.rate() : this.rate();
    const left = layer ? layer.size - layer.loaded : this.total - this.current();
    return `${formatRate(rate)}, ETA ${formatDuration(eta(left, rate))}`;
  }
}

/** What a pull reports through: its events, the manifests its client fetched, how it ended. */
export interface PullReporter {
  onEvent: (event: PullEvent) => void;
  manifest: (result: Pick<ManifestResult, "digest" | "manifest">) => void;
  /** The pull failed: say so where the format needs it (an NDJSON `error` line). */
  fail: (error: unknown) => void;
  stop: () => void;
}

export interface PullReporterOptions {
  /** NDJSON progress on stderr, in Docker Model Runner's shape (`--json`). */
  json?: boolean;
  /** The clock (ms). */
  now?: () => number;
  /** Plain lines: a total line at most this often (ms). Default 10 000. */
  plainInterval?: number;
}

/** NDJSON: a layer's line at most this often, unless it moved this many bytes or ended (Model Runner's pace). */
const JSON_INTERVAL_MS = 100;
const JSON_MIN_BYTES = 1024 * 1024;

/**
 * Shows a pull, always on stderr so stdout carries only data: with `json`, one JSON object a line
 * in Docker Model Runner's progress shape (`{type, message, total, layer: {id, size, current},
 * mode}`, plus `current` for the whole pull and the layer's `name`); on a terminal, a total bar and
 * a bar per layer in flight (human sizes, speed, ETA), each finished layer a line above them;
 * otherwise (a log, CI) plain lines: one per layer done and a total line every `plainInterval`.
 */
export function pullReporter(
  io: Pick<CliIo, "stderr" | "terminal">,
  options: PullReporterOptions = {},
): PullReporter {
  const state = new PullProgress(options.now);
  if (options.json) return jsonReporter(io, state);
  if (io.terminal) return terminalReporter(io.terminal, state);
  return plainReporter(io, state, options.plainInterval ?? 10_000);
}

function doneLine(fetched: number, reused: number, seconds: number): string {
  return `done: fetched ${formatSize(fetched)}, reused ${formatSize(reused)} in ${seconds.toFixed(1)} s\n`;
}

/** "model.gguf  1.0 GiB  in 42.0s (24.4 MiB/s)", or "… already stored". */
function layerLine(layer: LayerState, t: number): string {
  const moved = layer.size - (layer.from ?? layer.size);
  if (layer.fromCache || moved <= 0) return `${layer.name}  ${formatSize(layer.size)}  already stored`;
  const seconds = (t - layer.started) / 1000;
  const resumed = (layer.from ?? 0) > 0 ? `, resumed at ${formatSize(layer.from ?? 0)}` : "";
  const took = seconds < 60 ? `${seconds.toFixed(1)}s` : formatDuration(seconds);
  return `${layer.name}  ${formatSize(layer.size)}  in ${took} (${formatRate(moved / Math.max(seconds, 0.001))}${resumed})`;
}

function plainReporter(io: Pick<CliIo, "stderr">, state: PullProgress, interval: number): PullReporter {
  let lastLine = state.now();
  return {
    manifest: (result) => state.manifest(result),
    onEvent: (event) => {
      const layer = state.take(event);
      if (event.type === "resolve") {
        io.stderr(
          `pulling ${event.reference} (${event.format}, ${event.layers} blobs, ${formatSize(event.totalBytes)}, ${formatSize(event.storedBytes)} stored)\n`,
        );
        lastLine = state.now();
      } else if (event.type === "layer-done" && layer) {
        io.stderr(`  ${layerLine(layer, state.now())}\n`);
      } else if (event.type === "progress") {
        const t = state.now();
        if (t - lastLine >= interval) {
          lastLine = t;
          const current = state.current();
          const percent = state.total > 0 ? Math.floor((current * 100) / state.total) : 100;
          io.stderr(`  ${PullProgress.sizes(current, state.total)} (${percent}%), ${state.speed()}\n`);
        }
      } else if (event.type === "extract") {
        io.stderr(`  extracted ${event.path} (${formatSize(event.size)})\n`);
      } else if (event.type === "done") {
        io.stderr(doneLine(event.fetchedBytes, event.reusedBytes, event.seconds));
      }
    },
    fail: () => {},
    stop: () => {},
  };
}

function terminalReporter(stream: NodeJS.WriteStream, state: PullProgress): PullReporter {
  const multi = new MultiBar(
    {
      stream,
      format: " {bar} {percentage}% | {name} | {sizes} | {speed}",
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  let totalBar: SingleBar | undefined;
  const NAME_WIDTH = 28;
  const padName = (name: string) =>
    name.length > NAME_WIDTH ? `${name.slice(0, NAME_WIDTH - 1)}…` : name.padEnd(NAME_WIDTH);
  const updateTotal = () => {
    const current = state.current();
    totalBar?.update(current, {
      sizes: PullProgress.sizes(current, state.total),
      speed: state.speed(),
    });
  };
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    multi.update(); // writes lines still waiting above the bars
    multi.stop();
  };
  return {
    manifest: (result) => state.manifest(result),
    onEvent: (event) => {
      const layer = state.take(event);
      if (event.type === "resolve") {
        multi.log(
          `pulling ${event.reference} (${event.format}, ${event.layers} blobs, ${formatSize(event.totalBytes)}, ${formatSize(event.storedBytes)} stored)\n`,
        );
        totalBar = multi.create(Math.max(state.total, 1), state.current(), {
          name: padName("total"),
          sizes: PullProgress.sizes(state.current(), state.total),
          speed: state.speed(),
        });
      } else if (event.type === "layer-start" && layer && !layer.fromCache) {
        bars.set(
          event.digest,
          multi.create(Math.max(layer.size, 1), layer.loaded, {
            name: padName(layer.name),
            sizes: PullProgress.sizes(layer.loaded, layer.size),
            speed: state.speed(layer),
          }),
        );
      } else if (event.type === "progress" && layer) {
        bars.get(event.digest)?.update(layer.loaded, {
          sizes: PullProgress.sizes(layer.loaded, layer.size),
          speed: state.speed(layer),
        });
        updateTotal();
      } else if (event.type === "layer-done" && layer) {
        // logged first: removing the bar redraws, which writes the line above the bars
        multi.log(`  ${layerLine(layer, state.now())}\n`);
        const bar = bars.get(event.digest);
        if (bar) {
          multi.remove(bar);
          bars.delete(event.digest);
        }
        updateTotal();
      } else if (event.type === "done") {
        updateTotal();
        stop();
        stream.write(doneLine(event.fetchedBytes, event.reusedBytes, event.seconds));
      }
    },
    fail: () => stop(),
    stop,
  };
}

/** One NDJSON line in Docker Model Runner's shape (docker/model-runner pkg/distribution/oci ProgressMessage). */
interface ProgressMessage {
  type: "progress" | "success" | "error";
  message: string;
  /** Bytes of the whole pull (Model Runner: the image's size). */
  total: number;
  /** Bytes of the whole pull in the store now (ours, beside Model Runner's fields). */
  current: number;
  layer?: { id: string; size: number; current: number; name: string };
  mode: "pull";
  /** The error's code, on an `error` line. */
  code?: string;
}

function jsonReporter(io: Pick<CliIo, "stderr">, state: PullProgress): PullReporter {
  const last = new Map<string, { t: number; current: number }>();
  const write = (message: ProgressMessage) => io.stderr(`${JSON.stringify(message)}\n`);
  const progress = (digest: string, layer: LayerState, force: boolean) => {
    const t = state.now();
    const before = last.get(digest);
    const complete = layer.loaded >= layer.size;
    if (before && before.current === layer.loaded && !force) return;
    if (
      !force &&
      before &&
      !complete &&
      t - before.t < JSON_INTERVAL_MS &&
      layer.loaded - before.current < JSON_MIN_BYTES
    )
      return;
    last.set(digest, { t, current: layer.loaded });
    write({
      type: "progress",
      message: `Downloaded: ${(layer.loaded / 1024 / 1024).toFixed(2)} MB`,
      total: state.total,
      current: state.current(),
      layer: { id: digest, size: layer.size, current: layer.loaded, name: layer.name },
      mode: "pull",
    });
  };
  return {
    manifest: (result) => state.manifest(result),
    onEvent: (event) => {
      const layer = state.take(event);
      if (event.type === "layer-start" && layer) progress(event.digest, layer, true);
      else if ((event.type === "progress" || event.type === "layer-done") && layer)
        progress(event.digest, layer, false);
      else if (event.type === "done") {
        write({
          type: "success",
          message: `Pulled ${state.reference}: fetched ${formatSize(event.fetchedBytes)}, reused ${formatSize(event.reusedBytes)} in ${event.seconds.toFixed(1)} s`,
          total: state.total,
          current: state.current(),
          mode: "pull",
        });
      }
    },
    fail: (error) => {
      const message = error instanceof Error ? error.message : String(error);
      write({
        type: "error",
        message,
        total: state.total,
        current: state.current(),
        mode: "pull",
        ...(isOciError(error) ? { code: error.code } : {}),
      });
    },
    stop: () => {},
  };
}
