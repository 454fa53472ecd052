// Checks for what the training page sends (the UI's settings patch is checked by
// applySettingsPatch, its wallet secret by SecretStore). A bad report rejects the call with
// a message naming the field; the main process's state is untouched.
import type { EngineReport, StepReport } from '../contract.ts';
import { boundedString, finiteNumber, record } from './ipc-guard.ts';

const PHASES: ReadonlyArray<EngineReport['phase']> = ['connecting', 'syncing', 'training', 'exchanging', 'waiting', 'stopped'];

function wholeNumber(value: unknown, field: string): number {
  const n = finiteNumber(value, field);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${field} must be a whole number ≥ 0`);
  return n;
}

function nullableWhole(value: unknown, field: string): number | null {
  return value === null ? null : wholeNumber(value, field);
}

export function validateGpuReady(value: unknown): { adapterFound: boolean; adapterName: string | null } {
  const v = record(value, 'ready report');
  if (typeof v.adapterFound !== 'boolean') throw new Error('adapterFound must be true or false');
  return { adapterFound: v.adapterFound, adapterName: v.adapterName === null ? null : boundedString(v.adapterName, 'adapterName', 200) };
}

export function validateStepReport(value: unknown): StepReport {
  const v = record(value, 'step report');
  const durationMs = finiteNumber(v.durationMs, 'durationMs');
  if (durationMs < 0) throw new Error('durationMs must be ≥ 0');
  return {
    round: wholeNumber(v.round, 'round'),
    step: wholeNumber(v.step, 'step'),
    loss: finiteNumber(v.loss, 'loss'),
    durationMs,
    tokensPerSecond: finiteNumber(v.tokensPerSecond, 'tokensPerSecond'),
  };
}

export function validateEngineReport(value: unknown): EngineReport {
  const v = record(value, 'phase report');
  if (!PHASES.includes(v.phase as EngineReport['phase'])) throw new Error(`phase must be one of ${PHASES.join(', ')}`);
  return {
    phase: v.phase as EngineReport['phase'],
    round: nullableWhole(v.round, 'round'),
    step: nullableWhole(v.step, 'step'),
    loss: v.loss === null ? null : finiteNumber(v.loss, 'loss'),
    tokensPerSecond: v.tokensPerSecond === null ? null : finiteNumber(v.tokensPerSecond, 'tokensPerSecond'),
  };
}

export function validateRoundFinished(value: unknown): { round: number } {
  return { round: wholeNumber(record(value, 'round report').round, 'round') };
}

export function validateCheckpointSaved(value: unknown): { requestId: number | null; round: number | null; step: number | null } {
  const v = record(value, 'checkpoint report');
  return { requestId: nullableWhole(v.requestId, 'requestId'), round: nullableWhole(v.round, 'round'), step: nullableWhole(v.step, 'step') };
}

export function validateFailure(value: unknown): { kind: 'gpu-lost' | 'fatal'; message: string } {
  const v = record(value, 'failure report');
  if (v.kind !== 'gpu-lost' && v.kind !== 'fatal') throw new Error("kind must be 'gpu-lost' or 'fatal'");
  return { kind: v.kind, message: boundedString(v.message, 'message') };
}

export function validateSecret(value: unknown): string {
  return boundedString(value, 'the wallet secret', 16_384);
}
