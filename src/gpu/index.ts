export { Gpu, fmtBytes, type AdapterSummary, type GpuFeatures, type TypedData } from './gpu.ts';
export { openGpu, openGpuOnAdapter, requestAdapterWithRetry, summarizeAdapter, adapterName, type OpenGpuOptions } from './device.ts';
export { Tensor, shapeSize, type DType } from './tensor.ts';
export { Params } from './params.ts';
export { PipelineCache, type ShaderSource } from './pipelines.ts';
export { BufferPool } from './buffers.ts';
export { NoGpuError, GpuLostError, KernelInputError, GpuValidationError } from './errors.ts';
export { TensorArena, arenaOf, joinedView, planArena, ARENA_ALIGN, type ArenaSpec, type ArenaPlan, type ArenaSpan } from './arena.ts';
