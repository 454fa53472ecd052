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
    // SwiftShader runs kernels on the CPU: GPU tests are given room, never timed.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
