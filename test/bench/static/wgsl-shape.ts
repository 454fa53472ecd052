// Reads, from a kernel's WGSL and its override constants, what occupancy depends on: threads
// per workgroup (@workgroup_size) and the workgroup memory the entry point can reach (the
// var<workgroup> declarations named in it or in the functions it calls).

export interface WorkgroupShape {
  threads: number;
  sharedBytes: number;
}

const SCALAR_BYTES: Record<string, number> = { f32: 4, u32: 4, i32: 4, f16: 2, vec4f: 16, vec2f: 8, vec4u: 16, 'atomic<u32>': 4, 'atomic<i32>': 4 };

/** Module-scope `override` and `const` values, then the pipeline's constants on top. */
function scopeOf(code: string, constants: Record<string, number>): Map<string, string | number> {
  const scope = new Map<string, string | number>();
  for (const m of code.matchAll(/^\s*(?:override|const)\s+(\w+)\s*:\s*[\w<>]+\s*=\s*([^;]+);/gm)) scope.set(m[1], m[2].trim());
  for (const [k, v] of Object.entries(constants)) scope.set(k, v);
  return scope;
}

/** Integer arithmetic (+ − × ÷ %, parentheses) over literals and named constants, as WGSL u32. */
export function evaluate(expr: string, scope: Map<string, string | number>, depth = 0): number {
  if (depth > 20) throw new Error(`wgsl-shape: constants nest too deep at '${expr}'`);
  const tokens = expr.match(/\d+(?:\.\d+)?[uif]?|\w+|[-+*/%()]/g) ?? [];
  let i = 0;
  const atom = (): number => {
    const t = tokens[i++];
    if (t === '(') {
      const v = sum();
      i++; // ')'
      return v;
    }
    if (/^\d/.test(t)) return Number.parseFloat(t);
    const v = scope.get(t);
    if (v === undefined) throw new Error(`wgsl-shape: unknown constant ${t}`);
    return typeof v === 'number' ? v : evaluate(v, scope, depth + 1);
  };
  const product = (): number => {
    let v = atom();
    while (tokens[i] === '*' || tokens[i] === '/' || tokens[i] === '%') {
      const op = tokens[i++];
      const r = atom();
      v = op === '*' ? v * r : op === '/' ? Math.floor(v / r) : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (tokens[i] === '+' || tokens[i] === '-') {
      const op = tokens[i++];
      const r = product();
      v = op === '+' ? v + r : v - r;
    }
    return v;
  };
  return sum();
}

/** Function bodies by name (brace-matched). */
function functions(code: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of code.matchAll(/\bfn\s+(\w+)\s*\(/g)) {
    let i = code.indexOf('{', m.index);
    const start = i;
    let depth = 0;
    for (; i < code.length; i++) {
      if (code[i] === '{') depth++;
      else if (code[i] === '}' && --depth === 0) break;
    }
    out.set(m[1], code.slice(start, i + 1));
  }
  return out;
}

export function workgroupShape(code: string, entryPoint: string, constants: Record<string, number>): WorkgroupShape {
  const scope = scopeOf(code, constants);
  const entry = new RegExp(`@workgroup_size\\(([^)]*)\\)\\s*fn\\s+${entryPoint}\\s*\\(`).exec(code);
  if (!entry) throw new Error(`wgsl-shape: no @compute entry point ${entryPoint}`);
  const threads = entry[1].split(',').reduce((n, e) => n * evaluate(e.trim(), scope), 1);
  // Functions reachable from the entry point, then the workgroup variables they name.
  const bodies = functions(code);
  const reached = new Set([entryPoint]);
  const todo = [entryPoint];
  while (todo.length) {
    const body = bodies.get(todo.pop()!) ?? '';
    for (const m of body.matchAll(/\b(\w+)\s*\(/g)) {
      if (bodies.has(m[1]) && !reached.has(m[1])) {
        reached.add(m[1]);
        todo.push(m[1]);
      }
    }
  }
  const text = [...reached].map((f) => bodies.get(f)).join('\n');
  let sharedBytes = 0;
  for (const m of code.matchAll(/var<workgroup>\s+(\w+)\s*:\s*([^;]+);/g)) {
    if (!new RegExp(`\\b${m[1]}\\b`).test(text)) continue;
    const type = m[2].trim();
    const arr = /^array<\s*([\w<>]+)\s*,\s*(.+)>$/.exec(type);
    if (arr) sharedBytes += (SCALAR_BYTES[arr[1]] ?? 4) * evaluate(arr[2], scope);
    else sharedBytes += SCALAR_BYTES[type] ?? 4;
  }
  return { threads, sharedBytes };
}
