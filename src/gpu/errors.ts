// Errors a user or a caller can act on. Each message says what happened and what to do.

/** No usable WebGPU adapter: the message names the fix for this environment. */
export class NoGpuError extends Error {
  override name = 'NoGpuError';
}

/** The device went away (driver reset, GPU removed, out of memory, sleep on some systems). */
export class GpuLostError extends Error {
  override name = 'GpuLostError';
  constructor(readonly reason: string, detail: string) {
    super(
      `The GPU device was lost (${reason}${detail ? `: ${detail}` : ''}). ` +
        'Training stops here and resumes from the last checkpoint when restarted; ' +
        'if this repeats, update the GPU driver or choose a smaller model.',
    );
  }
}

/** A kernel was called with inputs it cannot take; thrown before anything is dispatched. */
export class KernelInputError extends Error {
  override name = 'KernelInputError';
  constructor(kernel: string, problem: string) {
    super(`${kernel}: ${problem}`);
  }
}

/** A WGSL compile error or a WebGPU validation error reported by the device. */
export class GpuValidationError extends Error {
  override name = 'GpuValidationError';
}
