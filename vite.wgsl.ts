import type { Plugin } from 'vite';

/** Makes `import src from './x.wgsl'` give the file's text, as bin/wgsl-hook.mjs does in Node. */
export function wgslText(): Plugin {
  return {
    name: 'tessera-wgsl-text',
    transform(code, id) {
      if (!id.endsWith('.wgsl')) return null;
      return { code: `export default ${JSON.stringify(code)};`, map: null };
    },
  };
}
