import type { Span } from "./types.js";

/** Byte spans of a blob, kept sorted and apart (touching spans are joined). */
export class SpanSet {
  #spans: [number, number][] = [];

  constructor(spans: Iterable<Span> = []) {
    for (const [start, end] of spans) this.add(start, end);
  }

  /** The spans, sorted. */
  list(): Span[] {
    return this.#spans.map(([start, end]) => [start, end] as const);
  }

  /** Bytes in all spans. */
  get bytes(): number {
    return this.#spans.reduce((n, [start, end]) => n + end - start, 0);
  }

  get size(): number {
    return this.#spans.length;
  }

  /** Adds `[start, end)` (which may overlap or touch spans already there). */
  add(start: number, end: number): void {
    if (start >= end) return;
    const kept: [number, number][] = [];
    let joined: [number, number] = [start, end];
    for (const span of this.#spans) {
      if (span[1] < joined[0] || span[0] > joined[1]) kept.push(span);
      else joined = [Math.min(span[0], joined[0]), Math.max(span[1], joined[1])];
    }
    kept.push(joined);
    this.#spans = kept.sort((a, b) => a[0] - b[0]);
  }

  /** Whether the byte at `offset` is in a span. */
  has(offset: number): boolean {
    return this.#spans.some(([start, end]) => start <= offset && offset < end);
  }

  /** Removes `[start, end)` when one span holds all of it, and says whether one did. */
  take(start: number, end: number): boolean {
    const i = this.#spans.findIndex(([s, e]) => s <= start && end <= e);
    const span = this.#spans[i];
    if (!span || start >= end) return false;
    const rest: [number, number][] = [];
    if (span[0] < start) rest.push([span[0], start]);
    if (end < span[1]) rest.push([end, span[1]]);
    this.#spans.splice(i, 1, ...rest);
    return true;
  }

  /** The span that starts at `offset`, removed, or undefined. */
  takeAt(offset: number): Span | undefined {
    const i = this.#spans.findIndex(([start]) => start === offset);
    return i < 0 ? undefined : (this.#spans.splice(i, 1)[0] as Span);
  }

  /** What `[start, end)` holds that no span does. */
  holes(start: number, end: number): Span[] {
    const out: Span[] = [];
    let at = start;
    for (const [s, e] of this.#spans) {
      if (e <= at || s >= end) continue;
      if (s > at) out.push([at, s]);
      at = Math.max(at, e);
    }
    if (at < end) out.push([at, end]);
    return out;
  }
}

/**
 * The spans (a checkpoint's past its offset, those a source is asked for) when they are whole
 * numbers, sorted, apart and inside `[from, to)`; none of them when any one is not.
 */
export function validSpans(spans: readonly Span[] | undefined, from: number, to: number): Span[] {
  if (!Array.isArray(spans)) return [];
  let at = from;
  for (const span of spans) {
    const [start, end] = Array.isArray(span) ? span : [];
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return [];
    if ((start as number) < at || (end as number) <= (start as number) || (end as number) > to) return [];
    at = (end as number) + 1;
  }
  return spans.map(([start, end]) => [start, end] as const);
}
