import type { BlobSource, SpanSource } from "./types.js";

/** A source read in order: a stream from the start, or a function of the offset. */
export type OrderedSource = Exclude<BlobSource, SpanSource>;

/** Whether a source can fetch spans of its blob at once. */
export function isSpanSource(source: BlobSource): source is SpanSource {
  return typeof source === "object" && "spans" in source && typeof source.spans === "function";
}

/** A source as a stream from the start or a function of the offset: a `SpanSource` read in order. */
export function orderedSource(source: BlobSource): OrderedSource {
  return isSpanSource(source) ? (offset) => source.from(offset) : source;
}
