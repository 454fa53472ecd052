// Every IPC message is checked before its handler runs: it must come from the top frame of
// the window that owns the channel (UI or training), loaded from the app's own origin, and
// its argument must pass the channel's validator. Anything else is refused with an error
// (the renderer sees the rejection) and counted.

export interface SenderFrameLike {
  url: string;
}

export interface IpcEventLike {
  sender: { id: number; mainFrame: SenderFrameLike | null };
  senderFrame: SenderFrameLike | null;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => unknown): void;
}

export type Validator<T> = (value: unknown) => T;

/** Whether a URL is one of the app's own pages: same origin and the same path. */
export type TrustedPage = (url: string) => boolean;

export function trustedPage(appUrl: string): TrustedPage {
  const base = new URL(appUrl);
  return (url) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    return parsed.protocol === base.protocol && parsed.host === base.host && parsed.pathname === base.pathname;
  };
}

/** Whether a URL or origin is the app's origin (any path): for permission checks. */
export function trustedOrigin(appUrl: string): TrustedPage {
  const base = new URL(appUrl);
  return (url) => {
    try {
      const parsed = new URL(url);
      return parsed.protocol === base.protocol && parsed.host === base.host;
    } catch {
      return false;
    }
  };
}

export class IpcGuard {
  readonly refusals = new Map<string, number>();

  constructor(
    private readonly ipcMain: IpcMainLike,
    private readonly isTrustedPage: TrustedPage,
    private readonly log: (message: string) => void = () => {},
  ) {}

  /** Why this event may not use a channel owned by `ownerId`, or null when it may. */
  refusal(event: IpcEventLike, ownerId: () => number | null): string | null {
    const frame = event.senderFrame;
    if (!frame) return 'the sending frame is gone';
    if (frame !== event.sender.mainFrame) return 'sent from a subframe';
    if (!this.isTrustedPage(frame.url)) return `sent from a page outside the app (${frame.url})`;
    if (event.sender.id !== ownerId()) return 'sent from a window that does not own this channel';
    return null;
  }

  /**
   * Registers a handler for one preload method. `ownerId` gives the webContents id allowed to
   * call it (the UI or the training window; it changes when a window is recreated).
   */
  handle<A, R>(channel: string, ownerId: () => number | null, validate: Validator<A>, handler: (arg: A) => R | Promise<R>): void {
    this.ipcMain.handle(channel, async (event, ...args) => {
      const why = this.refusal(event, ownerId);
      if (why) {
        this.refusals.set(channel, (this.refusals.get(channel) ?? 0) + 1);
        this.log(`IPC ${channel} refused: ${why}`);
        throw new Error(`refused: ${why}`);
      }
      if (args.length > 1) throw new Error(`${channel} takes at most one argument`);
      return handler(validate(args[0]));
    });
  }
}

// Validators for the contract's arguments.

export const noArgument: Validator<undefined> = (value) => {
  if (value !== undefined) throw new Error('this call takes no argument');
  return undefined;
};

export function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be an object`);
  return value as Record<string, unknown>;
}

export function finiteNumber(value: unknown, field: string, nullable = false): number {
  if (nullable && value === null) return null as unknown as number;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${field} must be a finite number${nullable ? ' or null' : ''}`);
  return value;
}

export function boundedString(value: unknown, field: string, max = 2_000): string {
  if (typeof value !== 'string' || value.length > max) throw new Error(`${field} must be a string of at most ${max} characters`);
  return value;
}
