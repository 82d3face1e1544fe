// A file that fails as it is imported (a module it needs is missing): no test is ever collected.
import { it } from "vitest";
import "./no-such-module.js";

it("never runs", () => {});
