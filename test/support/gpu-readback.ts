// Reading a GPU buffer back, web APIs only (no test runner): for Vitest browser tests and for the
// bundled pages other browsers run.

/** A GPU buffer's bytes, copied into a mappable buffer and read back. */
export async function readBack(device: GPUDevice, buffer: GPUBuffer): Promise<ArrayBuffer> {
  const copy = device.createBuffer({
    size: buffer.size,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, copy, 0, buffer.size);
  device.queue.submit([encoder.finish()]);
  await copy.mapAsync(GPUMapMode.READ);
  const bytes = copy.getMappedRange().slice(0);
  copy.destroy();
  return bytes;
}
