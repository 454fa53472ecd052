// Holds Electron's powerSaveBlocker ('prevent-app-suspension') only while training
// actually runs, so an idle or paused Tessera never keeps the machine awake.

export interface PowerSaveBlockerLike {
  start(type: 'prevent-app-suspension' | 'prevent-display-sleep'): number;
  stop(id: number): boolean;
  isStarted(id: number): boolean;
}

export class SuspensionBlocker {
  private id: number | null = null;

  constructor(private readonly blocker: PowerSaveBlockerLike) {}

  get held(): boolean {
    return this.id !== null && this.blocker.isStarted(this.id);
  }

  /** Idempotent: call with whether training runs, on every state change. */
  update(training: boolean): void {
    if (training && !this.held) this.id = this.blocker.start('prevent-app-suspension');
    if (!training && this.id !== null) {
      this.blocker.stop(this.id);
      this.id = null;
    }
  }
}
