// An integration suite whose registry did not start: its tests are skipped by Vitest.
import { beforeAll, describe, expect, it } from "vitest";

describe("against the registry", () => {
  beforeAll(() => {
    throw new Error("docker-registry: not found (fixture)");
  });
  it("pulls", () => expect(1).toBe(1));
  it("pushes", () => expect(1).toBe(1));
});
