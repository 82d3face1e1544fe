// A pull's progress as a table: a row per layer (the config blob first), filled from PullEvents.
import type { ModelSummary, PullEvent } from "../src/index.js";

export const el = (tag: string, text = "", className = "") => {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
};
export const mib = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;

interface Row {
  state: HTMLElement;
  bar: HTMLProgressElement;
  bytes: HTMLElement;
  speed: HTMLElement;
  started: number;
  /** A layer-start arrived: the pull read or checked this layer. */
  seen: boolean;
}

/** The table's parts: its body, and the total row's state, bar and bytes cells. */
export interface LayerTableParts {
  body: HTMLElement;
  totalState: HTMLElement;
  totalBar: HTMLProgressElement;
  totalBytes: HTMLElement;
}

export class LayerTable {
  private readonly rows = new Map<string, Row>();

  constructor(private readonly parts: LayerTableParts) {}

  /** A row per layer of the manifest, queued. */
  show(summary: ModelSummary) {
    this.parts.body.replaceChildren();
    this.rows.clear();
    for (const layer of [{ ...summary.config, path: "(model config)" }, ...summary.layers]) {
      const tr = el("tr");
      const state = el("td", "queued");
      const bar = document.createElement("progress");
      bar.max = layer.size;
      bar.value = 0;
      const barCell = el("td");
      barCell.append(bar);
      const bytes = el("td", `0 / ${mib(layer.size)}`, "num");
      const speed = el("td", "", "num");
      const label =
        layer.path ?? (layer.mediaType.endsWith(".tar") ? "config files (tar)" : layer.digest.slice(0, 19));
      tr.append(el("td", label), state, barCell, bytes, speed);
      this.parts.body.append(tr);
      this.rows.set(layer.digest, { state, bar, bytes, speed, started: 0, seen: false });
    }
    this.parts.totalState.textContent = "";
    this.parts.totalBar.value = 0;
    this.parts.totalBytes.textContent = "";
  }

  readonly onEvent = (event: PullEvent) => {
    const row = "digest" in event ? this.rows.get(event.digest) : undefined;
    if (event.type === "layer-start" && row) {
      row.seen = true;
      row.started = performance.now();
      row.state.textContent = event.fromCache ? "from cache" : "downloading";
      row.state.className = event.fromCache ? "state-cache" : "";
    } else if (event.type === "progress") {
      if (row) {
        row.bar.value = event.loaded;
        row.bytes.textContent = `${mib(event.loaded)} / ${mib(event.total)}`;
        const seconds = (performance.now() - row.started) / 1000;
        if (seconds > 0) row.speed.textContent = (event.loaded / seconds / 1e6).toFixed(1);
      }
      this.parts.totalBar.value = event.overallLoaded / Math.max(1, event.overallTotal);
      this.parts.totalBytes.textContent = `${mib(event.overallLoaded)} / ${mib(event.overallTotal)}`;
    } else if (event.type === "layer-done" && row) {
      if (row.state.textContent !== "from cache") {
        row.state.textContent = "verified → stored";
        row.state.className = "state-verified";
      }
      row.bar.value = row.bar.max;
    } else if (event.type === "done") {
      this.parts.totalState.textContent = `fetched ${mib(event.fetchedBytes)}, reused ${mib(event.reusedBytes)} in ${event.seconds.toFixed(2)} s`;
    }
  };

  /**
   * After a pull that read no layer (the model was in the store already, revalidated by one manifest
   * request): every row says so.
   */
  settleStored(note: string) {
    if ([...this.rows.values()].some((r) => r.seen)) return;
    for (const row of this.rows.values()) {
      row.state.textContent = "in store";
      row.state.className = "state-cache";
      row.bar.value = row.bar.max;
      row.bytes.textContent = mib(row.bar.max);
    }
    this.parts.totalBar.value = 1;
    this.parts.totalState.textContent = note;
  }

  /** Each row's file and state, for the tests. */
  states(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const tr of this.parts.body.querySelectorAll("tr"))
      out[tr.cells[0]?.textContent ?? ""] = tr.cells[1]?.textContent ?? "";
    return out;
  }
}
