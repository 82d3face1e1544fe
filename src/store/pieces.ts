import type { IngestState } from "./backend.js";
import { SpanSet } from "./spans.js";

/** How many bytes from 0 the pieces (any order) hold without a gap. */
export function heldBytes(pieces: Iterable<{ start: number; end: number }>): number {
  let held = 0;
  for (const piece of [...pieces].sort((a, b) => a.start - b.start)) {
    if (piece.start > held) break;
    held = Math.max(held, piece.end);
  }
  return held;
}

/**
 * The resume point a backend may report for a checkpoint when its medium holds `held` bytes from 0:
 * never past the first hole (a piece evicted or lost in a crash, or written after a discard), and
 * the saved hasher state only when every byte it covers is really there.
 */
export function trustedState(state: IngestState, held: number): IngestState {
  if (held >= state.offset) return state;
  const { hasherState: _, ...rest } = state;
  return { ...rest, offset: held };
}

/** Throws unless the pieces hold exactly bytes `[0, size)`: nothing else may become a blob. */
export function checkCovers(pieces: Iterable<{ start: number; end: number }>, size: number): void {
  const list = [...pieces];
  const held = heldBytes(list);
  const end = list.reduce((n, p) => Math.max(n, p.end), 0);
  if (held !== size || end !== size) {
    throw new Error(
      `its pieces hold bytes [0, ${held}) of ${size}${end > size ? ` and more past the end` : ""}`,
    );
  }
}

/**
 * The state with only the spans past its offset that the pieces hold whole (a piece lost in a
 * crash or evicted takes its span with it). A record whose spans are not pairs is left as it is,
 * for the engine to refuse.
 */
export function heldSpans(state: IngestState, pieces: Iterable<{ start: number; end: number }>): IngestState {
  const { spans, ...rest } = state;
  if (!Array.isArray(spans) || !spans.every((s) => Array.isArray(s) && s.length === 2)) return state;
  const held = new SpanSet([...pieces].map((p) => [p.start, p.end] as const));
  const kept = spans.filter(([start, end]) => held.holes(start, end).length === 0);
  return kept.length > 0 ? { ...rest, spans: kept } : rest;
}
