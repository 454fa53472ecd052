// The GPU classes `bench static` reads a recorded step against, and the WebGPU limits the
// recording device reports. Every figure here is an assumption stated once: public spec-sheet
// numbers for peak fp32 (non-tensor-core, boost clock) and DRAM bandwidth; per-SM residency
// limits from the vendors' occupancy tables (Apple publishes none: ours are estimates).

export interface GpuClass {
  name: string;
  /** Streaming multiprocessors (NVIDIA) or GPU cores (Apple). */
  sms: number;
  /** Peak fp32 FMA throughput, FLOP/s (2 per FMA), no tensor cores. */
  fp32Flops: number;
  /** DRAM bandwidth, bytes/s. */
  bytesPerSecond: number;
  /** Resident threads per SM, workgroup (shared) memory per SM, resident workgroups per SM. */
  threadsPerSm: number;
  sharedBytesPerSm: number;
  workgroupsPerSm: number;
  assumption: string;
}

const KiB = 1024;

export const GPU_CLASSES: readonly GpuClass[] = [
  {
    name: 'RTX 3080',
    sms: 68, fp32Flops: 29.8e12, bytesPerSecond: 760e9, threadsPerSm: 1536, sharedBytesPerSm: 100 * KiB, workgroupsPerSm: 16,
    assumption: 'GA102, 68 SMs × 128 fp32 lanes at 1.71 GHz = 29.8 TFLOPS; 760 GB/s GDDR6X; 1536 threads, 100 KiB shared, 16 blocks per SM',
  },
  {
    name: 'RTX 4090',
    sms: 128, fp32Flops: 82.6e12, bytesPerSecond: 1008e9, threadsPerSm: 1536, sharedBytesPerSm: 100 * KiB, workgroupsPerSm: 24,
    assumption: 'AD102, 128 SMs × 128 fp32 lanes at 2.52 GHz = 82.6 TFLOPS; 1008 GB/s; 1536 threads, 100 KiB shared, 24 blocks per SM',
  },
  {
    name: 'M2 Pro',
    sms: 19, fp32Flops: 6.8e12, bytesPerSecond: 200e9, threadsPerSm: 1024, sharedBytesPerSm: 32 * KiB, workgroupsPerSm: 16,
    assumption: '19 GPU cores × 128 fp32 lanes at 1.4 GHz = 6.8 TFLOPS; 200 GB/s LPDDR5; per core ~1024 threads, 32 KiB threadgroup memory, 16 groups (estimates)',
  },
  {
    name: 'H100 SXM',
    sms: 132, fp32Flops: 66.9e12, bytesPerSecond: 3350e9, threadsPerSm: 2048, sharedBytesPerSm: 228 * KiB, workgroupsPerSm: 32,
    assumption: 'GH100 SXM5, 132 SMs × 128 fp32 lanes at 1.98 GHz = 66.9 TFLOPS (no tensor cores); 3.35 TB/s HBM3; 2048 threads, 228 KiB shared, 32 blocks per SM',
  },
];

/**
 * WebGPU limits as Dawn reports them (after openGpuOnAdapter raises RAISED_LIMITS to the
 * adapter's) for a desktop NVIDIA GPU on Vulkan; assumed, not read from a device.
 */
export const RECORDING_LIMITS: Record<string, number> = {
  maxTextureDimension1D: 16384,
  maxTextureDimension2D: 16384,
  maxTextureDimension3D: 2048,
  maxTextureArrayLayers: 2048,
  maxBindGroups: 4,
  maxBindGroupsPlusVertexBuffers: 24,
  maxBindingsPerBindGroup: 1000,
  maxDynamicUniformBuffersPerPipelineLayout: 8,
  maxDynamicStorageBuffersPerPipelineLayout: 4,
  maxSampledTexturesPerShaderStage: 16,
  maxSamplersPerShaderStage: 16,
  maxStorageBuffersPerShaderStage: 10,
  maxStorageTexturesPerShaderStage: 8,
  maxUniformBuffersPerShaderStage: 12,
  maxUniformBufferBindingSize: 65536,
  maxStorageBufferBindingSize: 4294967292,
  minUniformBufferOffsetAlignment: 256,
  minStorageBufferOffsetAlignment: 32,
  maxVertexBuffers: 8,
  maxBufferSize: 4294967296,
  maxVertexAttributes: 30,
  maxVertexBufferArrayStride: 2048,
  maxInterStageShaderVariables: 16,
  maxColorAttachments: 8,
  maxColorAttachmentBytesPerSample: 32,
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
};

/** Resident workgroups per SM for a workgroup of `threads` threads and `sharedBytes` (registers not modelled). */
export function residentWorkgroups(g: GpuClass, threads: number, sharedBytes: number): number {
  const byThreads = Math.floor(g.threadsPerSm / Math.max(1, threads));
  const byShared = sharedBytes > 0 ? Math.floor(g.sharedBytesPerSm / sharedBytes) : Infinity;
  return Math.max(0, Math.min(byThreads, byShared, g.workgroupsPerSm));
}
