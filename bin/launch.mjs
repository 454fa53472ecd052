// Runs a TypeScript entry module directly (tsx), with .wgsl files importable as text.
// On Linux without a system Vulkan loader it re-runs the process once with Chromium's
// loader on the library path (see vulkan-env.mjs). The entry exports main(argv) → exit code.
import { register } from 'node:module';
import { spawn } from 'node:child_process';
import { vulkanEnvFix } from './vulkan-env.mjs';

export async function launch(entryUrl, argv) {
  const fix = process.env.TESSERA_VULKAN_ENV_DONE ? null : vulkanEnvFix();
  if (fix) {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, ...fix, TESSERA_VULKAN_ENV_DONE: '1' },
    });
    // Ctrl-C from a terminal reaches the child directly (same process group): the parent
    // only waits. Signals sent to the parent alone are passed on.
    process.on('SIGINT', () => {});
    for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
    return;
  }
  register('./wgsl-hook.mjs', import.meta.url);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  const { main } = await import(entryUrl);
  const code = await main(argv);
  // Dawn's instance is dropped on destroy, but a stray handle must not keep a finished
  // command alive.
  process.exit(code ?? 0);
}
