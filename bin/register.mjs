// `node --import ./bin/register.mjs file.ts`: TypeScript sources (tsx) with .wgsl imported as text.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

register('./wgsl-hook.mjs', import.meta.url);
registerTsx();
