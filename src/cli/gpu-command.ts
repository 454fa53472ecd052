// `tessera gpu`: what WebGPU adapter this machine gives Tessera, and what it can do.
import { adapterName, fmtBytes } from '../gpu/index.ts';
import { openNodeGpu, type NodeGpuOptions } from '../node/dawn.ts';

const SHOWN_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

const INTERESTING_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query', 'chromium-experimental-subgroup-matrix'];

export interface GpuReport {
  adapter: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  software: boolean;
  features: string[];
  limits: Record<string, number>;
}

export async function gpuReport(options: NodeGpuOptions = {}): Promise<GpuReport> {
  const gpu = await openNodeGpu(options);
  try {
    const limits: Record<string, number> = {};
    for (const k of SHOWN_LIMITS) limits[k] = gpu.adapter.limits[k];
    return {
      adapter: adapterName(gpu.info),
      vendor: gpu.info.vendor,
      architecture: gpu.info.architecture,
      device: gpu.info.device,
      description: gpu.info.description,
      software: gpu.info.isSoftware,
      features: [...gpu.adapter.features].map(String).sort(),
      limits,
    };
  } finally {
    gpu.destroy();
  }
}

export function formatGpuReport(r: GpuReport): string {
  const lines = [
    `adapter       ${r.adapter}`,
    `vendor        ${r.vendor || '(not reported)'}`,
    `architecture  ${r.architecture || '(not reported)'}`,
    `device        ${r.device || '(not reported)'}`,
    `description   ${r.description || '(not reported)'}`,
    '',
    'features that matter to Tessera:',
    ...INTERESTING_FEATURES.map((f) => `  ${r.features.includes(f) ? 'yes' : 'no '}  ${f}`),
    `all features: ${r.features.join(', ')}`,
    '',
    'limits:',
    ...Object.entries(r.limits).map(([k, v]) => `  ${k.padEnd(36)} ${k.endsWith('Size') && v >= 1 << 20 ? fmtBytes(v) : v}`),
  ];
  if (r.software) {
    lines.push(
      '',
      'This is a SOFTWARE adapter: WebGPU runs on the CPU, hundreds of times slower than a GPU.',
      'It is fine for tests. To contribute, install your GPU\'s Vulkan/D3D12/Metal driver.',
    );
  }
  return lines.join('\n');
}
