/**
 * Zstandard for tar layers (`…tar+zstd`) in every runtime. Every zstd stream first passes
 * `zstdFrames`, which reads the frame structure of RFC 8878 (§3.1) without decoding it: it refuses a
 * frame whose window is larger than `ZSTD_MAX_WINDOW` before any decoder sees the frame, and cuts the
 * stream at block ends, so that a decoder makes at most one block (128 KiB) of output per chunk and
 * backpressure holds. The runtime's `DecompressionStream("zstd")` decodes where it exists; elsewhere
 * `zstdDecoder` does, with fzstd (pure JS), imported only when a zstd layer is met.
 */

/**
 * The largest window a frame may ask for: 128 MiB (2^27), the limit zstd itself decodes up to by
 * default (`ZSTD_WINDOWLOG_LIMIT_DEFAULT` = 27 in zstd's lib/zstd.h; larger needs `--long` or
 * `--memory` when decoding). fzstd allocates a buffer of the window's size for each frame and accepts
 * windows up to 2 GiB, so the limit is enforced here, before it sees the frame.
 */
export const ZSTD_MAX_WINDOW = 2 ** 27;
/** The largest block: Block_Maximum_Size is the smaller of the window and 128 KiB (§3.1.1.2.3). */
const MAX_BLOCK = 128 * 1024;
const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames have the magic numbers 0x184D2A50…0x184D2A5F (§3.1.2). */
const SKIPPABLE_MAGIC = 0x184d2a50;

enum Part {
  /** A frame's magic number and header, or a skippable frame's magic number and size. */
  Frame,
  Block,
  Checksum,
}

const u32 = (b: Uint8Array, at: number) =>
  ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16)) +
  (b[at + 3] as number) * 2 ** 24;

/** Bytes of a frame header after its Frame_Header_Descriptor (§3.1.1.1.1). */
function headerRest(descriptor: number): number {
  const singleSegment = (descriptor >> 5) & 1;
  const fcsFlag = descriptor >> 6;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3] as number;
  const contentSizeBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  return 1 - singleSegment + dictionaryBytes + contentSizeBytes;
}

/**
 * The window a frame header asks for (§3.1.1.1.2): from its Window_Descriptor, or, in a single segment
 * frame, its Frame_Content_Size. `header` holds the magic number and the whole header.
 */
export function zstdWindowSize(header: Uint8Array): number {
  const descriptor = header[4] as number;
  if (!((descriptor >> 5) & 1)) {
    const windowDescriptor = header[5] as number;
    const base = 2 ** (10 + (windowDescriptor >> 3));
    return base + (base / 8) * (windowDescriptor & 7);
  }
  const at = 5 + ([0, 1, 2, 4][descriptor & 3] as number);
  switch (descriptor >> 6) {
    case 0:
      return header[at] as number;
    case 1:
      return ((header[at] as number) | ((header[at + 1] as number) << 8)) + 256;
    case 2:
      return u32(header, at);
    default:
      return u32(header, at) + u32(header, at + 4) * 2 ** 32;
  }
}

/**
 * Checks a zstd stream's frames as they pass (magic numbers, header, window, block types and sizes,
 * nothing left half-way at the end) and passes it on cut at the end of each part — header, block,
 * checksum — so that no chunk holds more than one block. Decodes nothing. `refuse` makes the error
 * thrown for a frame it will not pass.
 */
export function zstdFrames(refuse: (reason: string) => Error): TransformStream<Uint8Array, Uint8Array> {
  let part = Part.Frame;
  const head = new Uint8Array(18);
  let have = 0;
  let skip = 0;
  let window = 0;
  /** The Frame_Header_Descriptor of the frame being read. */
  let flags = 0;

  /** How many header bytes the current part needs, given the `have` it has. */
  function wanted(): number {
    if (part === Part.Block) return 3;
    if (part === Part.Checksum) return 4;
    if (have < 5) return 5;
    const magic = u32(head, 0);
    if (magic === ZSTD_MAGIC) return 5 + headerRest(head[4] as number);
    if (magic - (magic % 16) === SKIPPABLE_MAGIC) return 8;
    throw refuse(`it is not zstd data (a frame starts with 0x${magic.toString(16).padStart(8, "0")})`);
  }

  /** Reads the part whose header is complete; sets what to skip and what comes next. */
  function complete(): void {
    have = 0;
    if (part === Part.Checksum) {
      part = Part.Frame;
      return;
    }
    if (part === Part.Block) {
      const bits = (head[0] as number) | ((head[1] as number) << 8) | ((head[2] as number) << 16);
      const type = (bits >> 1) & 3;
      const size = bits >> 3;
      if (type === 3) throw refuse("a zstd block has the reserved block type");
      const max = Math.min(window, MAX_BLOCK);
      if (size > max) throw refuse(`a zstd block of ${size} bytes is larger than its frame allows (${max})`);
      // An RLE block holds one byte, repeated Block_Size times.
      skip = type === 1 ? 1 : size;
      if (bits & 1) part = flags & 4 ? Part.Checksum : Part.Frame;
      return;
    }
    if (u32(head, 0) !== ZSTD_MAGIC) {
      skip = u32(head, 4);
      return;
    }
    const descriptor = head[4] as number;
    if (descriptor & 8) throw refuse("a zstd frame header has its reserved bit set");
    const dictionaryBytes = [0, 1, 2, 4][descriptor & 3] as number;
    let dictionary = 0;
    const at = 6 - ((descriptor >> 5) & 1);
    for (let b = dictionaryBytes - 1; b >= 0; b--) dictionary = dictionary * 256 + (head[at + b] as number);
    if (dictionary) throw refuse(`a zstd frame needs dictionary ${dictionary}, which no layer provides`);
    window = zstdWindowSize(head);
    if (window > ZSTD_MAX_WINDOW)
      throw refuse(
        `a zstd frame asks for a window of ${window} bytes, more than the ${ZSTD_MAX_WINDOW} allowed`,
      );
    flags = descriptor;
    part = Part.Block;
  }

  return new TransformStream({
    transform(chunk, controller) {
      let start = 0;
      let i = 0;
      while (i < chunk.length) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - i);
          skip -= n;
          i += n;
        } else {
          head[have++] = chunk[i++] as number;
          if (have < wanted()) continue;
          complete();
        }
        // A part ends here: its header is read and it has nothing to skip, or the skip is done.
        if (skip === 0) {
          controller.enqueue(chunk.subarray(start, i));
          start = i;
        }
      }
      if (start < chunk.length) controller.enqueue(chunk.subarray(start));
    },
    flush() {
      if (part !== Part.Frame || have > 0 || skip > 0)
        throw refuse("it is truncated (its last zstd frame ends early)");
    },
  });
}

/** fzstd's streaming decoder as a TransformStream; fzstd is imported when the first stream starts. */
export function zstdDecoder(): TransformStream<Uint8Array, Uint8Array> {
  let decoder: { push(chunk: Uint8Array, final?: boolean): unknown };
  return new TransformStream({
    async start(controller) {
      const { Decompress } = await import("fzstd");
      decoder = new Decompress((data) => {
        if (data.length) controller.enqueue(data);
      });
    },
    transform(chunk) {
      decoder.push(chunk);
    },
    flush() {
      decoder.push(new Uint8Array(0), true);
    },
  });
}

/** The runtime's zstd decoder, or undefined where `DecompressionStream` knows no zstd. */
export function nativeZstdDecoder(): TransformStream<Uint8Array, Uint8Array> | undefined {
  let decoder: TransformStream<Uint8Array, Uint8Array> | undefined;
  try {
    decoder = new DecompressionStream("zstd" as CompressionFormat) as unknown as typeof decoder;
  } catch {
    // No zstd in this runtime's DecompressionStream.
  }
  return decoder;
}

/**
 * Decodes a zstd stream: its frames checked by `zstdFrames`, then decoded by the runtime's decoder,
 * else (or when `native` is false) by fzstd.
 */
export function decompressZstd(
  stream: ReadableStream<Uint8Array>,
  refuse: (reason: string) => Error,
  native = true,
): ReadableStream<Uint8Array> {
  const decoder = (native && nativeZstdDecoder()) || zstdDecoder();
  return stream.pipeThrough(zstdFrames(refuse)).pipeThrough(decoder);
}
