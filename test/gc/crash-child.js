// One GC run over an fs store in a process of its own, which SIGKILLs itself just before
// operation `at` of kind `step` (`unlink` or `delete`): a real crash at that point of the run.
//   node test/gc/crash-child.js DIR full|incremental unlink|delete AT
/* eslint-disable @typescript-eslint/no-require-imports */
const { GarbageCollector } = require('../../packages/lifecycle/dist/index.js');
const { openStore } = require('../../packages/storage/dist/index.js');

const [dir, mode, step, at] = process.argv.slice(2);
void (async () => {
  const store = await openStore(dir);
  let n = 0;
  const die = async () => {
    if (n++ === Number(at)) process.kill(process.pid, 'SIGKILL');
  };
  const gc = new GarbageCollector({
    region: 'eastus',
    store,
    role: 'primary',
    hooks: step === 'unlink' ? { beforeUnlink: die } : { beforeDelete: die },
  });
  await gc.run({ graceMs: 600_000, mode });
  process.stdout.write(`finished after ${n} ${step}s\n`);
  process.exit(0);
})();
