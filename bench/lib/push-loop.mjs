// A pushing client in a process of its own (so the registry's process is measured alone):
//   node bench/lib/push-loop.mjs URL COUNT [PREFIX]
// pushes COUNT small images one after another and prints their latencies (ms) as JSON.
import { RegistryClient } from './client.mjs';
import { smallImage } from './content.mjs';

const [url, count, prefix = 'push'] = process.argv.slice(2);
const client = new RegistryClient(url);
const ms = [];
for (let i = 0; i < Number(count); i++) {
  const img = smallImage(2, 4096);
  const t0 = performance.now();
  await client.pushImage(`${prefix}/p${i % 10}`, `t${i}`, img);
  ms.push(performance.now() - t0);
}
client.close();
process.stdout.write(JSON.stringify(ms));
