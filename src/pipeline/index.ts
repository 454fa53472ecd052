// Pipeline parallelism: the activation codec, the 1F1B schedule, stage links, the stage
// engine and its in-process runner, and the signed StageLink over a WebRTC PeerLink.
export * from './activation-codec.ts';
export * from './schedule.ts';
export * from './link.ts';
export * from './stage.ts';
export * from './runner.ts';
export * from './peer-link-stage.ts';
