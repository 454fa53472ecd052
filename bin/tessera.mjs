#!/usr/bin/env node
// The `tessera` command. Runs the TypeScript sources directly (tsx) with .wgsl files
// importable as text. On Linux without a system Vulkan loader it re-runs itself once with
// Chromium's loader on the library path (see vulkan-env.mjs).
import { register } from 'node:module';
import { spawn } from 'node:child_process';
import { vulkanEnvFix } from './vulkan-env.mjs';

const fix = process.env.TESSERA_VULKAN_ENV_DONE ? null : vulkanEnvFix();
if (fix) {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...fix, TESSERA_VULKAN_ENV_DONE: '1' },
  });
  // Ctrl-C from a terminal reaches the child directly (same process group): the parent only
  // waits. Signals sent to the parent alone are passed on.
  process.on('SIGINT', () => {});
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  register('./wgsl-hook.mjs', import.meta.url);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  const { main } = await import('../src/node/cli.ts');
  process.exitCode = await main(process.argv.slice(2));
}
