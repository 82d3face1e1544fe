// A bench page in Chromium with an on-disk profile (as users have) and precise heap figures.
import { join } from "node:path";
import { servePage } from "../test/support/page.js";

/** Serves `bench/pages/<page>.ts`, opens it and waits until `window[ready]` is a function. */
export async function openBenchTab(page: string, ready: string) {
  const served = await servePage(join(import.meta.dirname, "pages", `${page}.ts`), {
    profile: true,
    args: ["--enable-precise-memory-info", "--js-flags=--expose-gc"],
  });
  const tab = await served.newTab();
  await tab.goto(`${served.origin}/`);
  await tab.waitForFunction(
    (name) => typeof (window as unknown as Record<string, unknown>)[name] === "function",
    ready,
  );
  return { tab, close: () => served.close() };
}
