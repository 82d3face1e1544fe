// The part of Vitest's API the store contract uses (describe, it, expect), for a page in a browser
// Vitest cannot drive (Firefox: no Playwright build, no geckodriver here). A page bundles
// test/support/store-contract.ts with `vitest` aliased to this file; the Node test lists the cases,
// runs each in the page and fails with the page's failures. `expect` is Vitest's own (@vitest/expect
// over chai), so the contract's assertions mean exactly what they mean under Vitest.
import { JestAsymmetricMatchers, JestChaiExpect, JestExtend } from "@vitest/expect";
import * as chai from "chai";

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

interface Case {
  name: string;
  fn: () => unknown;
}

const cases: Case[] = [];
const prefix: string[] = [];
let assertions = 0;

export function describe(name: string, fn: () => void): void {
  prefix.push(name);
  try {
    fn();
  } finally {
    prefix.pop();
  }
}

export function it(name: string, fn: () => unknown): void {
  cases.push({ name: [...prefix, name].join(" > "), fn });
}

export const expect = ((value: unknown, message?: string) => {
  assertions++;
  return chai.expect(value, message);
}) as unknown as typeof import("vitest").expect;

export interface CaseResult {
  name: string;
  /** The failure, with its message and the first lines of its stack; absent when the case passed. */
  error?: string;
  assertions: number;
  ms: number;
}

/** The cases registered so far, by full name ("… store contract > case"). */
export function listCases(): string[] {
  return cases.map((c) => c.name);
}

/** Runs one case; a case that asserts nothing fails, as under the project's `requireAssertions`. */
export async function runCase(name: string): Promise<CaseResult> {
  const found = cases.find((c) => c.name === name);
  if (!found) return { name, error: `no case named ${JSON.stringify(name)}`, assertions: 0, ms: 0 };
  assertions = 0;
  const started = performance.now();
  try {
    await found.fn();
    const ms = Math.round(performance.now() - started);
    if (assertions === 0) return { name, error: "the case asserted nothing", assertions, ms };
    return { name, assertions, ms };
  } catch (error) {
    const e = error as Error;
    const stack = String(e?.stack ?? "")
      .split("\n")
      .slice(0, 6)
      .join("\n");
    return {
      name,
      error: `${e?.name ?? "Error"}: ${e?.message ?? String(error)}\n${stack}`,
      assertions,
      ms: Math.round(performance.now() - started),
    };
  }
}
