// "vitest" inside workerd, where Vitest cannot run: describe/it collect the cases of a shared suite
// (test/support/store-contract.ts) so a worker can run them one by one; expect is Vitest's own
// (@vitest/expect on chai), so the cases assert exactly what they assert in Node and Chromium.
import { chai, JestAsymmetricMatchers, JestChaiExpect, JestExtend } from "@vitest/expect";

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

export interface Case {
  name: string;
  fn: () => unknown;
}

export const cases: Case[] = [];
const path: string[] = [];

export function describe(name: string, fn: () => void): void {
  path.push(name);
  try {
    fn();
  } finally {
    path.pop();
  }
}

export function it(name: string, fn: () => unknown): void {
  cases.push({ name: [...path, name].join(" > "), fn });
}

export const expect = Object.assign(
  (value: unknown, message?: string) => chai.expect(value, message),
  chai.expect,
) as unknown as typeof import("vitest").expect;
