// Runs the build of the `tessera` command in the folder given first, as bin/tessera.mjs runs
// dist/cli (test/node/cli.test.ts builds one elsewhere, never replacing the real one under
// tests that run meanwhile). Exits 3 when the folder holds no fresh build.
import { freshBuild } from '../../bin/built-cli.mjs';
import { launch } from '../../bin/launch.mjs';

const [buildDir, ...argv] = process.argv.slice(2);
const entry = freshBuild(buildDir);
if (!entry) {
  console.error(`no fresh build in ${buildDir}`);
  process.exit(3);
}
await launch(entry, argv, { typescript: false, gpu: argv[0] === 'gpu' });
