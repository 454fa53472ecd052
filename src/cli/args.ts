// Argument parsing shared by every `tessera` command: util.parseArgs, with the mistakes a person
// makes turned into the command's own usage error (the CLI prints it with that command's usage
// and exits 2) instead of Node's text and the top-level help. One deliberate difference from
// parseArgs: a string option followed by a negative number takes it as its value
// (`--steps -5` is `--steps=-5`, which the command then checks), where parseArgs calls it
// ambiguous.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage mistake of a command without its own error class: printed with `usage`, exit 2. */
export class CommandUsageError extends Error {
  override name = 'CommandUsageError';
  constructor(
    /** 'coordinator', 'gpu', …: the message is printed as `tessera <command>: <message>`. */
    readonly command: string,
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string];

/** How much of an argument an error quotes: enough to recognise it, never a pasted paragraph. */
const QUOTED_CHARS = 40;
/** `-5`, `-0.5`, `-.5`, `-1e3`: the value of the option before it, never an option itself. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

function quoted(arg: string): string {
  return `'${arg.length > QUOTED_CHARS ? `${arg.slice(0, QUOTED_CHARS)}…` : arg}'`;
}

/** The option a mistyped name most likely meant, by edit distance (at most 2) or prefix. */
function closest(name: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of known) {
    const d = k.startsWith(name) || name.startsWith(k) ? 1 : editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/**
 * Checks `args` against the options and rewrites each string option's value into the
 * `--name=value` form (so a value starting with '-' reaches parseArgs intact). Throws
 * `usageError` naming the option for an unknown option, a missing value, a value given to a
 * flag, or an argument where none is taken.
 */
function normalise(args: readonly string[], options: Record<string, OptionSpec>, allowPositionals: boolean, usageError: (message: string) => Error): string[] {
  const names = Object.keys(options);
  const byShort = new Map(names.filter((n) => options[n].short).map((n) => [options[n].short!, n]));
  const unknown = (arg: string) => {
    const name = arg.replace(/^--?/, '').split('=')[0];
    const guess = arg.startsWith('--') && name ? closest(name, names) : null;
    return usageError(`unknown option ${quoted(arg.split('=')[0])}${guess ? ` (did you mean --${guess}?)` : ''}`);
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      if (!allowPositionals && i + 1 < args.length) throw usageError(`unexpected argument ${quoted(args[i + 1])}: this command takes options only`);
      out.push(...args.slice(i));
      break;
    }
    const isOption = arg.startsWith('-') && arg !== '-';
    if (!isOption) {
      if (!allowPositionals) throw usageError(`unexpected argument ${quoted(arg)}: this command takes options only (each value goes right after its --option)`);
      out.push(arg);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (arg.length === 2) {
      name = byShort.get(arg[1]);
    }
    if (name === undefined || !Object.hasOwn(options, name)) throw unknown(arg);
    if (options[name].type === 'boolean') {
      if (inline !== undefined) throw usageError(`--${name} is a switch and takes no value (got --${name}=…)`);
      out.push(`--${name}`);
      continue;
    }
    if (inline === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-' && !NEGATIVE_NUMBER.test(next))) {
        throw usageError(`--${name} needs a value (--${name} VALUE${next === undefined ? '' : `; for a value starting with '-', write --${name}=VALUE`})`);
      }
      inline = next;
      i++;
    }
    out.push(`--${name}=${inline}`);
  }
  return out;
}

/**
 * util.parseArgs (strict) for a command: its mistakes become `usageError(message)`, a message
 * naming the option (see normalise). `allowPositionals` as in parseArgs.
 */
export function parseCommandArgs<const T extends ParseArgsConfig & { args: string[] }>(config: T, usageError: (message: string) => Error): ReturnType<typeof parseArgs<T>> {
  const options = (config.options ?? {}) as Record<string, OptionSpec>;
  const args = normalise(config.args, options, config.allowPositionals === true, usageError);
  try {
    return parseArgs({ ...config, args, strict: true } as T);
  } catch (e) {
    // Not expected after normalise; still the command's error, never Node's stack.
    throw usageError(e instanceof Error ? e.message.split('\n')[0] : String(e));
  }
}
