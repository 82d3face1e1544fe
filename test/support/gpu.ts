// GPU test helpers, web APIs only (run in Chromium).
import { expect } from "vitest";

export { readBack } from "./gpu-readback.js";

/**
 * The tolerance against gguf-py's values: 1e-6 relative plus 1e-30 absolute. Exact equality is
 * expected — every product is exact in f32 (an f16 scale has 11 significant bits, the 6-bit Q4_K
 * scales and 8- or 4-bit quants fit beside them in 24), so the only rounding is Q4_K's one
 * subtraction, the same whether the GPU fuses it or not — but a GPU may flush an f16 subnormal scale
 * or round `unpack2x16float` differently at the edges, which the tolerance would absorb and the
 * reported maximum error (logged) would show.
 */
const RELATIVE = 1e-6;
const ABSOLUTE = 1e-30;

/** Fails on the first value outside the tolerance; returns the largest |error|. */
export function maxError(label: string, got: ArrayLike<number>, want: number[]): number {
  expect(got.length, label).toBe(want.length);
  let worst = 0;
  for (const [i, w] of want.entries()) {
    const error = Math.abs((got[i] as number) - w);
    worst = Math.max(worst, error);
    if (error > RELATIVE * Math.abs(w) + ABSOLUTE)
      expect.fail(`${label} value ${i}: ${got[i]}, gguf-py says ${w}`);
  }
  return worst;
}
