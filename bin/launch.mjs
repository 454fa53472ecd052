// Runs an entry module that exports main(argv) → exit code: built JavaScript as it is, or a
// TypeScript source through tsx with .wgsl files importable as text. On Linux without a
// system Vulkan loader a command that uses the GPU re-runs the process once with Chromium's
// loader on the library path (see vulkan-env.mjs); others skip that second start.
import { spawn } from 'node:child_process';
import { vulkanEnvFix } from './vulkan-env.mjs';

export async function launch(entryUrl, argv, { typescript = true, gpu = true } = {}) {
  const fix = !gpu || process.env.TESSERA_VULKAN_ENV_DONE ? null : vulkanEnvFix();
  if (fix) {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, ...fix, TESSERA_VULKAN_ENV_DONE: '1' },
    });
    // Ctrl-C from a terminal reaches the child directly (same process group), so with a
    // terminal the parent only waits (passing it on would make it a second Ctrl-C). Without
    // one, a SIGINT was sent to this process alone, by a program: pass it on.
    process.on('SIGINT', () => {
      if (!process.stdin.isTTY) child.kill('SIGINT');
    });
    for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
    return;
  }
  if (typescript) {
    try {
      await import('./register.mjs');
    } catch (e) {
      if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
      // `npx tessera` in a fresh clone: tsx (like every dependency) is not there yet.
      console.error('tessera: the dependencies are not installed; run `npm install` in this folder first.');
      process.exit(1);
    }
  } else {
    // The build's source maps put src/ paths and lines in the stack of an unexpected error.
    process.setSourceMapsEnabled(true);
  }
  const { main } = await import(entryUrl);
  process.exitCode = (await main(argv)) ?? 0;
  // Commands release the GPU and end on their own (test/node/exit.test.ts); should a stray
  // handle remain, a finished command still must not hang.
  setTimeout(() => process.exit(), 3000).unref();
}
