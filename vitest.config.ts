import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { wgslText } from './vite.wgsl.ts';
import { vulkanEnvFix } from './bin/vulkan-env.mjs';

// Test workers are forked processes: they start with this environment, so Dawn finds a
// Vulkan loader even where only chromium's copy exists.
Object.assign(process.env, vulkanEnvFix() ?? {});

export default defineConfig({
  plugins: [wgslText()],
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Vitest's default (cores − 1) runs files one at a time on CI's 2 cores; many of ours wait
    // on processes, sockets and timers, so two at a time finish ~15–20% sooner there.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // SwiftShader runs kernels on the CPU: GPU tests are given room, never timed. A safety net
    // only: tests that wait in spawnSync are judged after it returns, and on CI's 2 cores beside
    // test/swarm/startup.test.ts (busy loops on every core) real-process tests took 335–372 s.
    testTimeout: 900_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
