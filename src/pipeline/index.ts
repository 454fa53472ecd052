// Pipeline parallelism: the activation codec, the 1F1B schedule, stage links, the stage
// engine and its in-process runner.
export * from './activation-codec.ts';
export * from './schedule.ts';
export * from './link.ts';
export * from './stage.ts';
export * from './runner.ts';
