import { readdirSync } from "node:fs";
import { playwright } from "@vitest/browser-playwright";
import { defineConfig } from "vitest/config";

/** Debian's Chromium, as DESIGN.md fixes it: headless, no network chatter, WebGPU on SwiftShader. */
export const CHROMIUM = {
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless=new",
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-webgpu",
  ],
};

/** In every project: a test that asserts nothing fails, as it cannot tell working code from broken code. */
const expect = { requireAssertions: true };

// The demo page (issue 8) will be served from demo/; for now this file carries the test projects.
export default defineConfig({
  root: ".",
  // Pre-bundled before the first page loads: found only later, Vite would bundle them mid-run and
  // reload the page under a browser test (seen once: every transformers.js test failed to fetch).
  optimizeDeps: {
    include: ["@huggingface/transformers", "onnxruntime-web/wasm", "onnxruntime-web/jspi", "@wllama/wllama"],
  },
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          expect,
          include: ["test/unit/**/*.test.ts"],
          exclude: ["**/*.browser.test.ts", "**/*.edge.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          expect,
          include: ["test/integration/**/*.test.ts"],
          exclude: ["**/*.browser.test.ts", "**/*.edge.test.ts"],
          environment: "node",
          globalSetup: ["test/support/build.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "edge",
          expect,
          include: ["test/edge/**/*.edge.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "browser",
          expect,
          include: ["test/**/*.browser.test.ts"],
          // setup.ts and any setup-<topic>.ts beside it: each starts what its tests inject.
          globalSetup: readdirSync("test/browser")
            .filter((name) => /^setup(-[\w-]+)?\.ts$/.test(name))
            .map((name) => `test/browser/${name}`),
          testTimeout: 30_000,
          hookTimeout: 60_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: CHROMIUM }),
            instances: [{ browser: "chromium" }],
          },
        },
      },
    ],
  },
});
