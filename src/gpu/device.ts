import { NoGpuError } from './errors.ts';
import { Gpu, type AdapterSummary } from './gpu.ts';

export interface OpenGpuOptions {
  /** Request shader-f16 when the adapter has it (kernels then offer f16 variants). */
  f16?: boolean;
  powerPreference?: GPUPowerPreference;
  /** requestAdapter() can return null while a driver wakes up; retry this many times. */
  adapterRetries?: number;
  retryDelayMs?: number;
  /** Called once the device is released (Node uses it to drop Dawn's instance). */
  onDestroy?: () => void;
}

/** The limits worth raising to the adapter's maximum: big buffers, big workgroups. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Asks for an adapter, retrying briefly: some systems answer null just after start-up. */
export async function requestAdapterWithRetry(
  api: GPU,
  { powerPreference = 'high-performance', adapterRetries = 3, retryDelayMs = 150 }: OpenGpuOptions = {},
): Promise<GPUAdapter | null> {
  for (let attempt = 0; ; attempt++) {
    const adapter = await api.requestAdapter({ powerPreference });
    if (adapter || attempt >= adapterRetries) return adapter;
    await new Promise<void>((r) => setTimeout(r, retryDelayMs * (attempt + 1)));
  }
}

/** Opens a device on a WebGPU implementation: `navigator.gpu` in a page or worker, Dawn in Node. */
export async function openGpu(api: GPU | undefined, options: OpenGpuOptions = {}): Promise<Gpu> {
  if (!api) {
    throw new NoGpuError(
      'This browser has no WebGPU. Use a current Chrome, Edge or the Tessera desktop app; ' +
        'on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan.',
    );
  }
  const adapter = await requestAdapterWithRetry(api, options);
  if (!adapter) {
    throw new NoGpuError('WebGPU is present but offers no GPU adapter. Update the GPU driver, or enable hardware acceleration in the browser settings.');
  }
  return openGpuOnAdapter(adapter, options);
}

export async function openGpuOnAdapter(adapter: GPUAdapter, options: OpenGpuOptions = {}): Promise<Gpu> {
  const wantF16 = options.f16 === true && adapter.features.has('shader-f16');
  const requiredFeatures: GPUFeatureName[] = [];
  if (wantF16) requiredFeatures.push('shader-f16');
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  // Requested whenever offered: only kernels that ask for it (an `enable subgroups;` module)
  // use it, so other shaders compile exactly as without it.
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups');
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'tessera' });
  return new Gpu(
    device,
    adapter,
    summarizeAdapter(adapter),
    {
      f16: wantF16,
      subgroups: device.features.has('subgroups'),
      timestampQuery: requiredFeatures.includes('timestamp-query'),
    },
    options.onDestroy,
  );
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/i;

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const fallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware: fallback || SOFTWARE_NAMES.test(text),
  };
}

/** "NVIDIA ampere (NVIDIA GeForce RTX 3080)" style one-line name. */
export function adapterName(info: AdapterSummary): string {
  const main = [info.vendor, info.architecture].filter(Boolean).join(' ');
  const desc = info.description || info.device;
  const name = desc ? `${main} (${desc})` : main;
  return info.isSoftware ? `${name} [software: CPU speeds]` : name;
}
