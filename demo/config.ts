// What the demo pages pull, and through which proxy. The dev server (npm run demo) compiles it into the
// page as __DEMO__; a production build (npm run demo:build) compiles in null and the page reads
// demo-config.json beside itself, which whoever deploys the site edits without rebuilding.

export interface DemoConfig {
  /** The page's default model: the transformer (`…/demo/lm:lm-bf16` from the demo's layout) or --registry's. */
  reference: string;
  /** The character MLP of the first demo (tag v1); "" where there is none. */
  charMlp: string;
  /** The transformers.js tab's model (the tiny BERT, tag tiny-bert-v1); "" where there is none. */
  transformers: string;
  /** The registry proxy's URL. */
  proxy: string;
}

declare const __DEMO__: DemoConfig | null;

export async function loadDemoConfig(): Promise<DemoConfig> {
  if (__DEMO__) return __DEMO__;
  const response = await fetch(new URL("demo-config.json", location.href));
  if (!response.ok) throw new Error(`demo-config.json: HTTP ${response.status}`);
  const config = (await response.json()) as Partial<DemoConfig>;
  return {
    reference: config.reference ?? "",
    charMlp: config.charMlp ?? "",
    transformers: config.transformers ?? "",
    proxy: config.proxy ?? "",
  };
}
