import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
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

// The in-process files that take longest (tens of seconds on CI's 2 cores), longest first:
// they start at once instead of wherever file size put them (convergence, small but ~90 s,
// used to start near the end and run alone while the other core idled).
const SLOW_FIRST = [
  'test/sparseloco/convergence.test.ts',
  'test/kernels/attention.test.ts',
  'test/coordinator/adversary-model.test.ts',
  'test/pipeline/pipeline.test.ts',
  'test/pipeline/peer-link-stage.test.ts',
  'test/pipeline/swarm-peer.test.ts',
  'test/pipeline/stage.test.ts',
  'test/kernels/matmul-core-training.test.ts',
  'test/model/slice.test.ts',
  'test/gpu/precompile.test.ts',
];

/** Vitest's order (projects, groups), with the known-slow files of a project first. */
class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOW_FIRST.findIndex((p) => f.moduleId.endsWith(p));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    const key = (f: TestSpecification, i: number) => [f.project.config.sequence.groupOrder, sorted.findIndex((g) => g.project.name === f.project.name), rank(f), i];
    const keyed = sorted.map((f, i) => ({ f, k: key(f, i) }));
    keyed.sort((a, b) => a.k.reduce((d, x, j) => d || x - b.k[j], 0));
    return keyed.map((x) => x.f);
  }
}

export default defineConfig({
  plugins: [wgslText()],
  test: {
    pool: 'forks',
    sequence: { sequencer: SlowFirstSequencer },
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
