// parseCommandArgs: each mistake becomes the command's own error naming the option, and a
// negative number after a string option is its value (util.parseArgs calls it ambiguous).
import { describe, expect, it } from 'vitest';
import { CommandUsageError, parseCommandArgs } from '../../src/cli/args.ts';

class DemoUsageError extends Error {
  override name = 'DemoUsageError';
}

const OPTIONS = {
  steps: { type: 'string' },
  lr: { type: 'string' },
  input: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(args: string[], allowPositionals = false) {
  return parseCommandArgs({ args, options: OPTIONS, allowPositionals }, (m) => new DemoUsageError(m));
}

function usageError(args: string[], allowPositionals = false): string {
  try {
    parse(args, allowPositionals);
  } catch (e) {
    expect(e).toBeInstanceOf(DemoUsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(args)}`);
}

describe('parseCommandArgs', () => {
  it('reads options as util.parseArgs does', () => {
    const { values } = parse(['--steps', '20', '--json', '--lr=0.01', '--input', 'a.txt', '--input', 'b.txt', '-h']);
    expect(values).toEqual({ steps: '20', json: true, lr: '0.01', input: ['a.txt', 'b.txt'], help: true });
  });

  it('a negative number after a string option is its value, for the command to check', () => {
    expect(parse(['--steps', '-5']).values.steps).toBe('-5');
    expect(parse(['--lr', '-0.5', '--json']).values).toEqual({ lr: '-0.5', json: true });
    expect(parse(['--lr', '-.5']).values.lr).toBe('-.5');
    expect(parse(['--lr', '-1e3']).values.lr).toBe('-1e3');
    expect(parse(['--steps=-5']).values.steps).toBe('-5');
    // any value starting with '-' can still be given with '='
    expect(parse(['--input=-weird.txt']).values.input).toEqual(['-weird.txt']);
  });

  it('an unknown option is named, with the likely one meant', () => {
    expect(usageError(['--stesp', '5'])).toBe("unknown option '--stesp' (did you mean --steps?)");
    expect(usageError(['--js'])).toBe("unknown option '--js' (did you mean --json?)");
    expect(usageError(['--frobnicate=1'])).toBe("unknown option '--frobnicate'");
    expect(usageError(['-x'])).toBe("unknown option '-x'");
    expect(usageError(['-5'])).toBe("unknown option '-5'");
  });

  it('a missing value is named, whether the option ends the line or another option follows', () => {
    expect(usageError(['--steps'])).toBe('--steps needs a value (--steps VALUE)');
    expect(usageError(['--steps', '--json'])).toBe("--steps needs a value (--steps VALUE; for a value starting with '-', write --steps=VALUE)");
  });

  it('a switch given a value, and an argument where the command takes none, are refused', () => {
    expect(usageError(['--json=yes'])).toBe('--json is a switch and takes no value (got --json=…)');
    expect(usageError(['--steps', '5', '10'])).toBe("unexpected argument '10': this command takes options only (each value goes right after its --option)");
    expect(usageError(['--', 'x'])).toMatch(/unexpected argument 'x'/);
    expect(usageError(['x'.repeat(100)])).toContain(`'${'x'.repeat(40)}…'`);
  });

  it('with positionals allowed, they pass, and everything after -- is one', () => {
    expect(parse(['file.bin', '--json'], true)).toMatchObject({ values: { json: true }, positionals: ['file.bin'] });
    expect(parse(['--', '--json', '-5'], true)).toMatchObject({ values: {}, positionals: ['--json', '-5'] });
  });

  it('CommandUsageError carries the command and its usage for the CLI to print', () => {
    const e = new CommandUsageError('gpu', "unknown option '--x'", 'usage: tessera gpu');
    expect([e.command, e.message, e.usage, e.name]).toEqual(['gpu', "unknown option '--x'", 'usage: tessera gpu', 'CommandUsageError']);
  });
});
