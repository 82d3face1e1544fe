/**
 * The ingest of a blob whose source fetches spans side by side (`SpanSource`): each piece is
 * written at its offset as it arrives (`StoreBackend.ingestWriteAt`), so nothing waits in memory
 * for the ranges before it, and checkpoints record the spans that landed past the hashed prefix.
 * The hasher still sees the blob in order: bytes that arrive at the prefix are hashed as they come;
 * a chunk that landed ahead is kept once its write is done (the buffer the backend gives back, no
 * copy), up to `AHEAD_BYTES`, and hashed from memory when the prefix reaches it; past that, and for
 * the spans a resumed push finds, the bytes are read back from the ingest (so what is hashed is what
 * is stored). A resumed push asks the source only for the holes.
 */
import { OciError, throwIfAborted } from "../errors.js";
import type { StoreBackend } from "./backend.js";
import { Chunker } from "./chunker.js";
import { SpanSet } from "./spans.js";
import type { Span, SpanSource } from "./types.js";

/**
 * Bytes of chunks that landed ahead of the prefix kept in memory to be hashed, at most: four ranges
 * of 16 MiB in flight land at most this far ahead; the registry client's eight, up to twice that,
 * and what lands past it is read back. On Chromium, reading every chunk ahead back from OPFS to
 * hash it made a 256 MiB pull over a 40 ms, 25 MB/s link take 11.5 s instead of 7.0 s (hashing and
 * storing are what limit there); with eight ranges and this bound it took 7.3–9.1 s (run 8).
 */
const AHEAD_BYTES = 64 * 1024 * 1024;

/** What `ingestSpans` works with; the engine resumed the hasher and checked the quota. */
export interface SpansIngest {
  backend: StoreBackend & Required<Pick<StoreBackend, "ingestWriteAt">>;
  digest: string;
  size: number;
  source: SpanSource;
  /** Bytes hashed so far (the stored prefix), and spans past them that are stored, not hashed. */
  offset: number;
  spans: readonly Span[];
  /** Feeds the hasher (and the tap) the next bytes in order. */
  hash: (bytes: Uint8Array) => Promise<void>;
  /** The hasher's state after the bytes hashed so far, when it can save one. */
  save: () => Uint8Array | undefined;
  chunkSize: number;
  checkpointBytes: number;
  /** Bytes of chunks landed ahead kept in memory, at most. Default `AHEAD_BYTES`. */
  aheadBytes?: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((bytes: number, total: number) => void) | undefined;
  action: string;
}

/** One range's bytes not written yet, cut into chunks of `chunkSize` as they come. */
interface Pending {
  /** Where its next chunk goes. */
  at: number;
  chunks: Chunker;
}

/**
 * Fetches what the ingest lacks and writes it, hashing the blob in order. Resolves with the bytes
 * read from the source once every byte of the blob is stored and hashed; a failure keeps (and
 * records) everything that arrived, for the next push to resume from.
 */
export async function ingestSpans(ingest: SpansIngest): Promise<{ fetched: number }> {
  const { backend, digest, size, chunkSize, checkpointBytes, signal, onProgress, action } = ingest;
  const aheadBytes = ingest.aheadBytes ?? AHEAD_BYTES;
  let hashed = ingest.offset;
  /** Stored past `hashed`, not hashed yet. */
  const landed = new SpanSet(ingest.spans);
  /** Not received yet. */
  const missing = new SpanSet(landed.holes(hashed, size));
  let fetched = 0;
  let written = 0;
  let checkpointed = 0;
  /** The write in flight: one at a time, while the next piece is read and hashed. */
  let inFlight: Promise<void> = Promise.resolve();
  const pending = new Map<number, Pending>();
  /** Chunks that landed ahead, by offset, kept to be hashed from memory, and what to do with them after. */
  const kept = new Map<number, { bytes: Uint8Array; recycle: (bytes: Uint8Array) => void }>();
  /**
   * Chunks written ahead that will be kept if the backend gives them back before the prefix reaches
   * them (one that queues its writes gives them back once written): their bytes, by offset.
   */
  const awaited = new Map<number, number>();
  /** Bytes of the chunks kept and awaited. */
  let keptBytes = 0;
  /** The backend gave a chunk back after its write resolved: it queues writes (else it never will). */
  let givesBackLate = false;
  /** The ingest was thrown away (nothing of it can be trusted): nothing may be written or recorded. */
  let discarded = false;
  const discard = async () => {
    discarded = true;
    pending.clear();
    kept.clear();
    awaited.clear();
    await inFlight.catch(() => {});
    await backend.ingestDiscard(digest);
  };
  /** The hasher failed: it may be past bytes that will never be written, so nothing more is recorded. */
  let broken: { error: unknown } | undefined;
  const hash = async (bytes: Uint8Array) => {
    if (broken) throw broken.error;
    try {
      await ingest.hash(bytes);
    } catch (error) {
      broken = { error };
      throw error;
    }
  };

  /** Hashes what landed where the prefix is now: from memory where it was kept, else read back. */
  const catchUp = async () => {
    for (;;) {
      const chunk = kept.get(hashed);
      if (chunk) {
        const { bytes, recycle } = chunk;
        kept.delete(hashed);
        keptBytes -= bytes.byteLength;
        landed.take(hashed, hashed + bytes.byteLength);
        await hash(bytes);
        hashed += bytes.byteLength;
        recycle(bytes);
        continue;
      }
      // On its way back from a backend that queues its writes: wait for them rather than read it back
      // (a read waits for them too, and OPFS closes every open piece for it).
      if (awaited.has(hashed) && backend.ingestWritten) {
        await backend.ingestWritten(digest);
        if (kept.has(hashed)) continue;
      }
      const span = landed.takeAt(hashed);
      if (!span) return;
      const start = hashed;
      /** Up to the next chunk kept or awaited: the rest of the span goes back for it. */
      const upTo = (end: number) =>
        Math.min(...[...kept.keys(), ...awaited.keys()].filter((at) => at > start && at < end), end);
      const stream = await backend.ingestRead(digest, start, upTo(span[1]) - start);
      // The read waited for the writes before it: a chunk given back meanwhile is hashed from memory.
      if (kept.has(start)) {
        landed.add(start, span[1]);
        await stream.cancel().catch(() => {});
        continue;
      }
      const end = upTo(span[1]);
      if (end < span[1]) landed.add(end, span[1]);
      // A chunk given back from here on is not kept: these bytes are read back.
      for (const [at, bytes] of awaited) {
        if (at >= start && at < end) {
          awaited.delete(at);
          keptBytes -= bytes;
        }
      }
      let read = 0;
      for await (const bytes of stream) {
        const take = bytes.subarray(0, end - start - read);
        read += take.byteLength;
        if (take.byteLength > 0) await hash(take);
        if (read === end - start) break;
      }
      if (read !== end - start) {
        // The medium lost bytes it had recorded: nothing of this ingest can be trusted.
        await discard();
        throw new OciError(
          "STORAGE",
          `Cannot ${action}: bytes ${start}-${end - 1} it had stored read back as ${read} bytes; pushing again starts over`,
        );
      }
      hashed = end;
    }
  };

  /**
   * Records the prefix hashed so far and the spans landed past it, after the write in flight (the
   * prefix may end in it); not awaited, as an ordered push's. `final` waits for every write first.
   */
  const checkpoint = async (final = false) => {
    if (final) {
      await inFlight;
      await catchUp();
    }
    if (broken) throw broken.error;
    const hasherState = ingest.save();
    const state = {
      offset: hashed,
      updatedAt: Date.now(),
      ...(hasherState ? { hasherState } : {}),
      ...(landed.size > 0 ? { spans: landed.list() } : {}),
    };
    inFlight = inFlight.then(() => backend.ingestCheckpoint(digest, state));
    inFlight.catch(() => {});
    checkpointed = written;
    if (final) await inFlight;
  };

  /** Writes a chunk at `at` (hashing it first when it is where the prefix ends). */
  const place = async (at: number, bytes: Uint8Array, recycle: (bytes: Uint8Array) => void) => {
    const next = at === hashed;
    if (next) {
      await hash(bytes);
      hashed += bytes.byteLength;
    }
    await inFlight;
    const length = bytes.byteLength;
    // A chunk ahead is kept when the backend gives it back (it may have transferred it to a worker).
    if (!next && keptBytes + length <= aheadBytes) {
      awaited.set(at, length);
      keptBytes += length;
    }
    let resolved = false;
    const returned = (back: Uint8Array) => {
      if (resolved) givesBackLate = true;
      const held = awaited.get(at);
      awaited.delete(at);
      if (held !== undefined && back.byteLength === held) kept.set(at, { bytes: back, recycle });
      else {
        if (held !== undefined) keptBytes -= held;
        recycle(back);
      }
    };
    inFlight = backend.ingestWriteAt(digest, at, bytes, returned).then(() => {
      resolved = true;
      const held = awaited.get(at);
      if (held !== undefined && !givesBackLate) {
        awaited.delete(at); // not given back: read back instead
        keptBytes -= held;
      }
      // Landed, unless hashed already: written where the prefix ended, or given back and hashed
      // from memory before this write resolved.
      if (at >= hashed) landed.add(at, at + length);
    });
    // Awaited by the next write; until then a failure must not count as unhandled (Node exits).
    inFlight.catch(() => {});
    // Counted when handed to the backend (the checkpoint waits for the write): a checkpoint every
    // `checkpointBytes`, as an ordered push.
    written += length;
    await catchUp();
    if (written - checkpointed >= checkpointBytes) await checkpoint();
  };

  /** Writes what a range holds: its full chunks, and with `all` the rest. */
  const drain = async (range: Pending, all: boolean) => {
    while (range.chunks.full || (all && range.chunks.buffered > 0)) {
      const bytes = range.chunks.cut(all);
      const at = range.at;
      range.at += bytes.byteLength;
      await place(at, bytes, range.chunks.recycle);
    }
  };

  const report = () => onProgress?.(size - missing.bytes, size);
  report();
  let reader: ReadableStreamDefaultReader<{ offset: number; bytes: Uint8Array }> | undefined;
  const onAbort = () => void reader?.cancel(signal?.reason).catch(() => {});
  // Removed when the push ends: a signal may outlive many pushes (one for a whole pull).
  signal?.addEventListener("abort", onAbort);
  try {
    const wanted = missing.list();
    if (wanted.length > 0) reader = (await ingest.source.spans(wanted)).getReader();
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      const { offset, bytes } = value;
      if (bytes.byteLength === 0) continue;
      const end = offset + bytes.byteLength;
      if (!Number.isSafeInteger(offset) || !missing.take(offset, end)) {
        // As a source that runs past its size: nothing of it is kept to resume from.
        await discard();
        throw new OciError(
          "SIZE_MISMATCH",
          `Cannot ${action}: the source sent bytes ${offset}-${end - 1}, which were not asked for or came twice`,
        );
      }
      fetched += bytes.byteLength;
      let range = pending.get(offset);
      pending.delete(offset);
      range ??= { at: offset, chunks: new Chunker(chunkSize) };
      range.chunks.add(bytes);
      const expected = range.at + range.chunks.buffered;
      // A range ends where no more bytes are to come: the next range arrived first, or a hole ends.
      const open = missing.has(expected);
      if (open) pending.set(expected, range);
      await drain(range, !open);
      report();
    }
    throwIfAborted(signal, action);
  } catch (error) {
    // Keep what arrived: every range's bytes are written and recorded (unless writing or hashing
    // is what failed), but nothing after a range of the wrong size (as an ordered push).
    const wrongSize = error instanceof OciError && error.code === "SIZE_MISMATCH";
    if (!discarded && !wrongSize) await keep().catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader?.cancel().catch(() => {});
  }
  await keep();
  if (missing.size > 0) {
    throw new OciError(
      "SIZE_MISMATCH",
      `Cannot ${action}: the source ended with ${missing.bytes} of ${size} bytes missing; pushing again resumes from there`,
    );
  }
  if (hashed !== size) {
    throw new OciError("STORAGE", `Cannot ${action}: ${size - hashed} stored bytes were never hashed`);
  }
  return { fetched };

  async function keep() {
    for (const range of pending.values()) await drain(range, true);
    pending.clear();
    await checkpoint(true);
  }
}
