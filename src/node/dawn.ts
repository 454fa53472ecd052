// WebGPU in Node through Dawn (the `webgpu` package), with SwiftShader as the fallback on
// Linux machines that have no GPU driver but have Debian's chromium installed.
import { existsSync, readdirSync } from 'node:fs';
import { NoGpuError } from '../gpu/errors.ts';
import { openGpuOnAdapter, requestAdapterWithRetry, summarizeAdapter, type OpenGpuOptions } from '../gpu/device.ts';
import type { Gpu } from '../gpu/gpu.ts';

/** Debian's chromium ships SwiftShader's Vulkan driver here; TESSERA_SWIFTSHADER_ICD overrides. */
export const SWIFTSHADER_ICD = process.env.TESSERA_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface NodeGpuOptions extends OpenGpuOptions {
  /** 'auto': a hardware adapter when there is one, else SwiftShader; 'software': SwiftShader only. */
  adapter?: 'auto' | 'software';
}

type DawnCreate = (flags: string[]) => GPU;

let dawn: { create: DawnCreate } | null = null;

async function loadDawn(): Promise<{ create: DawnCreate }> {
  if (dawn) return dawn;
  let mod: { create: DawnCreate; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new NoGpuError(
      `Could not load Dawn (the 'webgpu' package): ${(e as Error).message}. Run 'npm install' in the Tessera folder.`,
    );
  }
  // GPUBufferUsage, GPUMapMode and friends, as a browser has them.
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  dawn = mod;
  return mod;
}

/**
 * Opens a GPU device in Node. Dawn keeps the process alive while its instance is referenced,
 * so the instance lives only in this closure and is dropped when the Gpu is destroyed.
 */
export async function openNodeGpu(options: NodeGpuOptions = {}): Promise<Gpu> {
  const { create } = await loadDawn();
  const mode = options.adapter ?? (process.env.TESSERA_ADAPTER === 'software' ? 'software' : 'auto');
  // Holds Dawn's instance for as long as the device is in use.
  const held: { instance: GPU | null } = { instance: null };
  let adapter: GPUAdapter | null = null;

  // With no Vulkan driver manifest installed, asking Vulkan first only prints warnings.
  if (mode === 'auto' && (process.platform !== 'linux' || hasVulkanDriverManifest())) {
    held.instance = create([]);
    adapter = await requestAdapterWithRetry(held.instance, options);
  }
  const canUseSwiftShader = process.platform === 'linux' && existsSync(SWIFTSHADER_ICD);
  if (!adapter && canUseSwiftShader) {
    // The Vulkan loader reads this when Dawn creates its next instance.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    held.instance = create([]);
    adapter = await requestAdapterWithRetry(held.instance, { ...options, adapterRetries: 1 });
  }
  if (!adapter) {
    held.instance = null;
    throw new NoGpuError(noGpuAdvice(mode));
  }
  if (mode === 'software' && !summarizeAdapter(adapter).isSoftware) {
    throw new NoGpuError('A software adapter was asked for but Dawn returned a hardware one; unset VK_ICD_FILENAMES.');
  }
  const onDestroy = options.onDestroy;
  const gpu: Gpu = await openGpuOnAdapter(adapter, {
    ...options,
    onDestroy: () => {
      // device.destroy() finishes on Dawn's threads: an instance garbage-collected before the
      // device is lost crashes the process (SIGSEGV, or glibc aborting on a futex or mutex).
      void gpu.device.lost.then(() => (held.instance = null));
      onDestroy?.();
    },
  });
  return gpu;
}

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];

function hasVulkanDriverManifest(): boolean {
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  return ICD_DIRS.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
}

function noGpuAdvice(mode: string): string {
  const lines = ['No WebGPU adapter was found.'];
  if (process.platform === 'linux') {
    if (mode === 'software') lines.push(`SwiftShader needs ${SWIFTSHADER_ICD}: install it with 'sudo apt-get install chromium'.`);
    else
      lines.push(
        'Install your GPU\'s Vulkan driver (NVIDIA: the proprietary driver; AMD/Intel: mesa-vulkan-drivers) and the Vulkan loader (libvulkan1).',
        `To run on the CPU instead (slow, for testing), install Debian's chromium, which ships SwiftShader at ${SWIFTSHADER_ICD}.`,
      );
  } else if (process.platform === 'win32') {
    lines.push('Update the GPU driver (Dawn uses Direct3D 12 there).');
  } else if (process.platform === 'darwin') {
    lines.push('Dawn uses Metal: macOS 11 or later on a Mac with a Metal GPU is required.');
  }
  return lines.join('\n');
}
