// A command run at a real terminal (a pseudo-terminal from python3's pty module), so prompts
// that read a password without echo can be tested as a person meets them. Each step waits for
// a text to appear (or its timeout), then types a line.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** python3 with its pty module, which the driver needs; tests skip without it. */
export const hasPty = spawnSync('python3', ['-c', 'import pty'], { encoding: 'utf8' }).status === 0;

export interface TerminalStep {
  /** Wait until the output holds this text... */
  waitFor: string;
  /** ...for at most this long, seconds... */
  seconds: number;
  /** ...then type this (a line; omit to only wait). */
  type?: string;
}

/**
 * Runs `argv` in `cwd` at a pseudo-terminal (TESSERA_WALLET_PASSWORD removed from its
 * environment), plays `steps`, kills it, and returns everything it printed. `scratch` is a
 * folder for the driver script.
 */
export async function atTerminal(scratch: string, cwd: string, argv: string[], steps: TerminalStep[]): Promise<{ stdout: string; stderr: string }> {
  const script = join(scratch, 'tty-driver.py');
  const lines = steps.map((s) => {
    const wait = `read_until(${pyBytes(s.waitFor)}, ${s.seconds})`;
    return s.type === undefined ? wait : `${wait}\nos.write(fd, ${pyBytes(s.type + '\r')})`;
  });
  writeFileSync(script, `
import os, pty, sys, time, select, signal
pid, fd = pty.fork()
if pid == 0:
    env = dict(os.environ); env.pop('TESSERA_WALLET_PASSWORD', None)
    os.chdir(sys.argv[1])
    os.execvpe(sys.argv[2], sys.argv[2:], env)
out = b''
def read_until(pat, t):
    global out
    end = time.time() + t
    while pat not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try: out += os.read(fd, 4096)
            except OSError: break
${lines.join('\n')}
os.kill(pid, signal.SIGKILL)
sys.stdout.write(out.decode())
`);
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [script, cwd, ...argv]);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => resolve({ stdout, stderr }));
  });
}

/** A Python bytes literal of a JavaScript string (UTF-8, every byte escaped). */
function pyBytes(text: string): string {
  return `b'${[...new TextEncoder().encode(text)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;
}
