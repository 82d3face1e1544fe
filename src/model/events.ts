import type { ModelFormat } from "./format.js";

/**
 * What a pull reports, in order: one `resolve` (totals known before the first byte), then per layer
 * `layer-start`, `progress`…, `layer-done`, an `extract` per file taken out of an archive, and `done`.
 */
export type PullEvent =
  | {
      type: "resolve";
      reference: string;
      digest: string;
      format: ModelFormat;
      /** Layers this pull will have in the store when done (config blob included). */
      layers: number;
      /** Bytes those layers hold, and how many of them are already stored. */
      totalBytes: number;
      storedBytes: number;
    }
  | { type: "layer-start"; digest: string; path: string | undefined; size: number; fromCache: boolean }
  | {
      type: "progress";
      digest: string;
      loaded: number;
      total: number;
      /** Across the whole pull. */
      overallLoaded: number;
      overallTotal: number;
    }
  | { type: "layer-done"; digest: string; path: string | undefined }
  | { type: "extract"; path: string; digest: string; size: number }
  | {
      type: "done";
      /** Bytes read from the registry by this pull (resumed and re-read bytes count). */
      fetchedBytes: number;
      /** Bytes that were already in the store. */
      reusedBytes: number;
      seconds: number;
    };
