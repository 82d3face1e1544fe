// The floors of src/ (ARCHITECTURE.md): an import may go to its own floor or one below, never up,
// and no two files import each other round a cycle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "../../src");

/** Bottom to top. A top-level file (errors.ts) is a floor of its own name. */
const FLOORS = [
  ["errors", "streams", "reference"],
  ["oci"],
  ["digest"],
  ["archive"],
  ["store"],
  ["registry"],
  ["tensors"],
  ["model"],
  ["webgpu"],
  ["adapters"],
  ["proxy"],
  ["index", "internals"],
  ["node"],
];

type Graph = Map<string, string[]>;

function sourceGraph(): Graph {
  const graph: Graph = new Map();
  const files = readdirSync(SRC, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  for (const file of files) {
    const text = readFileSync(join(SRC, file), "utf8");
    const imports = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)].map((m) =>
      relative(SRC, resolve(dirname(join(SRC, file)), m[1] as string)).replace(/\.js$/, ".ts"),
    );
    graph.set(file, imports);
  }
  return graph;
}

const floorOf = (file: string) => {
  const name = file.includes("/") ? (file.split("/")[0] as string) : file.replace(/\.ts$/, "");
  const floor = FLOORS.findIndex((names) => names.includes(name));
  if (floor < 0) throw new Error(`${file} is on no floor: add ${name} to FLOORS`);
  return floor;
};

function upwardImports(graph: Graph): string[] {
  return [...graph].flatMap(([file, imports]) =>
    imports.filter((target) => floorOf(target) > floorOf(file)).map((target) => `${file} -> ${target}`),
  );
}

/** Every cycle's files (Tarjan's strongly connected components of more than one file). */
function cycles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) component.push(w);
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("the floors of src/", () => {
  it("finds an import that runs up and a cycle in a graph that has them", () => {
    const bad: Graph = new Map([
      ["store/engine.ts", ["registry/client.ts"]],
      ["registry/client.ts", ["registry/api.ts"]],
      ["registry/api.ts", ["registry/client.ts", "errors.ts"]],
      ["errors.ts", []],
    ]);
    expect(upwardImports(bad)).toEqual(["store/engine.ts -> registry/client.ts"]);
    expect(cycles(bad)).toEqual([["registry/api.ts", "registry/client.ts"]]);
  });

  it("has no import that runs up a floor", () => {
    expect(upwardImports(sourceGraph())).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(cycles(sourceGraph())).toEqual([]);
  });
});
