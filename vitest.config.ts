import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { wgslText } from './vite.wgsl.ts';
import { vulkanEnvFix } from './bin/vulkan-env.mjs';

// Test workers are forked processes: they start with this environment, so Dawn finds a
// Vulkan loader even where only chromium's copy exists.
Object.assign(process.env, vulkanEnvFix() ?? {});

// Files that run several CPU-hungry processes of their own (real swarms: a coordinator and
// contributors, each with a SwiftShader device; headless Chromium with its GPU process and
// Node peers). Each one alone already keeps CI's 2 cores busy, and two side by side ran ~3×
// slower than alone (measured: the README demo 147 s alone, the rewards swarm 72 s alone vs
// 235 s beside another file), so they run one at a time, after the rest.
const PROCESS_SUITES = [
  'test/swarm/**/*.test.ts',
  'test/e2e/**/*.test.ts',
  'test/train/train-command.test.ts',
  'test/coordinator/unscored-restart.test.ts',
];

export default defineConfig({
  plugins: [wgslText()],
  test: {
    pool: 'forks',
    // SwiftShader runs kernels on the CPU: GPU tests are given room, never timed. A safety net
    // only: tests that wait in spawnSync are judged after it returns.
    testTimeout: 900_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'in-process',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...PROCESS_SUITES],
          // One process per file: two at a time use CI's 2 cores.
          maxWorkers: Math.max(2, availableParallelism() - 1),
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'processes',
          include: PROCESS_SUITES,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
