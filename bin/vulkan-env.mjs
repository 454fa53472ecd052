// Dawn loads the Vulkan loader (libvulkan.so.1) when it starts. Debian's chromium ships one
// beside its SwiftShader driver; on a machine with no system loader we point the dynamic
// linker at it. The linker reads LD_LIBRARY_PATH only at process start, so callers apply
// this to a child process (bin/tessera.mjs re-executes itself; vitest's forks inherit it).
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export const CHROMIUM_DIR = '/usr/lib/chromium';
const LIB = 'libvulkan.so.1';

function systemHasVulkanLoader() {
  try {
    const out = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    if (out.includes(LIB)) return true;
  } catch {
    // ldconfig missing: fall through to the usual directories.
  }
  const dirs = ['/usr/lib', '/usr/lib64', '/lib', '/lib64', '/usr/local/lib'];
  for (const d of ['/usr/lib', '/lib']) {
    try {
      for (const e of readdirSync(d)) if (e.endsWith('-linux-gnu')) dirs.push(`${d}/${e}`);
    } catch {
      // not there
    }
  }
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  return [...fromEnv, ...dirs].some((d) => existsSync(`${d}/${LIB}`));
}

/** The environment additions a child process needs to load Vulkan, or null when none. */
export function vulkanEnvFix(env = process.env) {
  if (process.platform !== 'linux') return null;
  if (systemHasVulkanLoader()) return null;
  if (!existsSync(`${CHROMIUM_DIR}/${LIB}`)) return null;
  const prev = env.LD_LIBRARY_PATH;
  return { LD_LIBRARY_PATH: prev ? `${prev}:${CHROMIUM_DIR}` : CHROMIUM_DIR };
}
