import { serveRegistryProxy } from "oci-model-loader/node";

const server = await serveRegistryProxy({
  allow: ["dockerhub", "ghcr"],
  origins: ["https://app.example.com"],
  port: 8787, // the default, on 127.0.0.1
});
console.log(`registry proxy on ${server.url}`); // pages pass { proxy: server.url }
