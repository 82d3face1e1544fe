// npm run demo [-- --registry REF]: the demo page, on the transformer committed under demo/layout (tag
// lm-bf16, served by `oci-model serve`'s handler) through the registry proxy, or on REF in a real
// registry. The character MLP (tag v1) runs there too; the transformers.js tab runs the tiny BERT
// committed beside it (tag tiny-bert-v1), or any reference typed in.
import { startDemo } from "./demo-servers.js";

const at = process.argv.indexOf("--registry");
const registry = at > 0 ? process.argv[at + 1] : process.env.DEMO_REGISTRY;
const open = !process.env.CI && process.env.BROWSER !== "none";
const demo = await startDemo({ ...(registry ? { registry } : {}), open });
process.stdout.write(
  `\n  oci-model-loader demo: ${demo.url}\n  model ${demo.reference} through the proxy at ${demo.proxy}\n${demo.charMlpReference ? `  character MLP: ${demo.url}?ref=${encodeURIComponent(demo.charMlpReference)}\n` : ""}${demo.transformersReference ? `  transformers.js tab: ${demo.transformersReference} (${demo.url}#transformers)\n` : ""}  (Ctrl-C to stop)\n\n`,
);
const stop = async () => {
  await demo.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
