// WGSL sources live in shaders/*.wgsl and are imported as text: by Vite and Vitest through
// the plugin in vite.wgsl.ts, by Node through bin/wgsl-hook.mjs, by esbuild with --loader:.wgsl=text.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
