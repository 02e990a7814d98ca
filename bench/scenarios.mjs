// The benchmark scenarios. Each runs against one registry ({name, url, host, pid}) and returns
// plain numbers; run.mjs runs each against Meridian and then Distribution and compares them.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RegistryClient } from './lib/client.mjs';
import { makeImage, memBlob, MANIFEST_ACCEPT, MiB, smallImage } from './lib/content.mjs';
import { ab, wrk } from './lib/load.mjs';
import { sampleRss } from './lib/rss.mjs';
import { OciLayout, skopeoCopy } from './lib/skopeo.mjs';
import { tempDir } from './lib/procs.mjs';
import { randomBytes } from 'node:crypto';

const run = promisify(execFile);
const MB = 1e6;

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * 1. `count` small images (config + 2 layers of 4 KiB), one repository each, pushed in turn;
 * then `skopeoCount` more with `skopeo copy` (fresh content each time: skopeo remembers where it
 * saw a blob and would mount it instead of uploading).
 */
export async function smallImages(target, { count, skopeoCount = 0, round = 0 }) {
  const client = new RegistryClient(target.url);
  try {
    await client.pushImage('warmup/small', 'v1', smallImage()); // connections, JIT, directories
    const images = Array.from({ length: count }, () => smallImage(2, 4096));
    const push = await timed(async () => {
      for (let i = 0; i < count; i++)
        await client.pushImage(`small/r${round}-app-${i}`, 'v1', images[i]);
    });
    const out = { pushSeconds: push.seconds, perImageMs: (push.seconds * 1000) / count };
    if (skopeoCount > 0) {
      const layout = new OciLayout(tempDir(`oci-small-${target.name}-r${round}`));
      const tags = Array.from({ length: skopeoCount + 1 }, (_, i) => `s${i}`);
      tags.forEach((t) => layout.addSmallImage(t));
      await skopeoCopy(layout.dir, tags[0], target.host, `skopeo/r${round}-warmup`);
      const copy = await timed(async () => {
        for (const tag of tags.slice(1))
          await skopeoCopy(layout.dir, tag, target.host, `skopeo/r${round}-${tag}`);
      });
      out.skopeoSeconds = copy.seconds;
    }
    return out;
  } finally {
    client.close();
  }
}

/** 2. `count` images of config + `layers` × 8 MiB layers: push, then pull, in MB/s. */
export async function mediumImages(target, { count, layers, layerSize, round = 0 }) {
  const client = new RegistryClient(target.url);
  try {
    const images = Array.from({ length: count }, () =>
      makeImage(Array.from({ length: layers }, () => memBlob(randomBytes(layerSize)))),
    );
    const bytes = images.reduce(
      (n, im) => n + im.layers.reduce((a, l) => a + l.size, im.config.size),
      0,
    );
    const push = await timed(async () => {
      for (let i = 0; i < count; i++)
        await client.pushImage(`medium/r${round}-app-${i}`, 'v1', images[i]);
    });
    const pull = await timed(async () => {
      let n = 0;
      for (let i = 0; i < count; i++)
        n += await client.pullImage(`medium/r${round}-app-${i}`, 'v1');
      return n;
    });
    return {
      bytes,
      pushMBps: bytes / MB / push.seconds,
      pullMBps: pull.value / MB / pull.seconds,
      pushSeconds: push.seconds,
      pullSeconds: pull.seconds,
    };
  } finally {
    client.close();
  }
}

/** 3. One large layer: raw streamed push (POST+PATCH+PUT), `skopeo copy` push, blob GET by curl. */
export async function largeLayer(target, { blob, skopeoLayout, getRuns }) {
  const client = new RegistryClient(target.url);
  try {
    const image = makeImage([blob]);
    const push = await timed(() => client.pushImage('large/raw', 'v1', image));
    const out = { bytes: blob.size, rawPushMBps: blob.size / MB / push.seconds };
    if (skopeoLayout) {
      const copy = await timed(() =>
        skopeoCopy(skopeoLayout.dir, skopeoLayout.tag, target.host, 'large/skopeo'),
      );
      out.skopeoPushMBps = skopeoLayout.bytes / MB / copy.seconds;
    }
    const rates = [];
    for (let i = 0; i < getRuns; i++) {
      const { stdout } = await run('curl', [
        '-sS',
        '--fail',
        '-o',
        '/dev/null',
        '-w',
        '%{size_download} %{time_total}',
        `${target.url}/v2/large/raw/blobs/${blob.digest}`,
      ]);
      const [size, seconds] = stdout.trim().split(' ').map(Number);
      if (size !== blob.size)
        throw new Error(`blob GET returned ${size} bytes, expected ${blob.size}`);
      rates.push(size / MB / seconds);
    }
    out.getMBps = median(rates);
    out.getRuns = rates;
    return out;
  } finally {
    client.close();
  }
}

/**
 * 4. `count` images sharing one base layer plus a small unique layer. Across repositories the
 * client mounts the base from the first one (`POST ?mount=&from=`); within one repository it
 * finds the base by HEAD and skips it.
 */
export async function sharedBase(target, { count, baseSize, round = 0 }) {
  const client = new RegistryClient(target.url);
  try {
    const base = memBlob(randomBytes(baseSize));
    const build = () =>
      Array.from({ length: count }, () => makeImage([base, memBlob(randomBytes(4096))]));
    const across = build();
    const crossRepo = await timed(async () => {
      for (let i = 0; i < count; i++) {
        await client.pushImage(`shared/r${round}-app-${i}`, 'v1', across[i], {
          mountFrom: `shared/r${round}-app-0`,
        });
      }
    });
    const crossStats = client.stats;
    client.resetStats();
    const within = build();
    const sameRepo = await timed(async () => {
      for (let i = 0; i < count; i++)
        await client.pushImage(`shared-one/r${round}-app`, `v${i}`, within[i]);
    });
    return {
      crossRepoSeconds: crossRepo.seconds,
      mounted: crossStats.mounted,
      crossUploadedMB: crossStats.bytesUploaded / MB,
      sameRepoSeconds: sameRepo.seconds,
      skipped: client.stats.exists,
      sameUploadedMB: client.stats.bytesUploaded / MB,
    };
  } finally {
    client.close();
  }
}

/** 5. Seeds what the request-rate benchmarks read: one image, and a repository with `tags` tags. */
export async function seedReadTargets(target, { tags }) {
  const client = new RegistryClient(target.url);
  try {
    await client.pushImage('read/app', 'latest', smallImage());
    const layers = [memBlob(randomBytes(4096)), memBlob(randomBytes(4096))];
    const first = makeImage(layers, { annotation: 't0' });
    await client.pushImage('read/tags', 't0', first);
    for (let i = 1; i < tags; i++) {
      await client.pushImage('read/tags', `t${i}`, makeImage(layers, { annotation: `t${i}` }));
    }
    const r = await client.expect(200, 'GET', '/v2/read/tags/tags/list');
    const n = JSON.parse(r.body.toString('utf8')).tags.length;
    if (n !== tags) throw new Error(`tags list has ${n} tags, expected ${tags}`);
  } finally {
    client.close();
  }
}

/** 5. Request rates: manifest GET (wrk) and HEAD (ab) by tag, tags list GET (wrk). */
export async function requestRates(target, { seconds, connections, threads, only }) {
  const manifest = `${target.url}/v2/read/app/manifests/latest`;
  const headers = { Accept: MANIFEST_ACCEPT };
  const out = {};
  const opts = { seconds, connections, threads };
  const check = (r, what) => {
    if (r.errors > 0) throw new Error(`${what}: ${r.errors} errors of ${r.requests} requests`);
    return r;
  };
  if (!only || only.includes('get'))
    out.manifestGet = check(await wrk(manifest, { ...opts, headers }), 'GET');
  if (!only || only.includes('head')) {
    out.manifestHead = check(await ab(manifest, { ...opts, method: 'HEAD', headers }), 'HEAD');
  }
  if (!only || only.includes('tags')) {
    out.tagsList = check(await wrk(`${target.url}/v2/read/tags/tags/list`, opts), 'tags list');
  }
  return out;
}

/** 6. A `blob.size` layer pushed (one streamed PATCH) and pulled while the server's RSS is sampled. */
export async function memoryUnderLoad(target, { blob }) {
  const client = new RegistryClient(target.url);
  const sampler = sampleRss(target.pid);
  try {
    const push = await timed(() => client.pushImage('huge/layer', 'v1', makeImage([blob])));
    const pull = await timed(() => client.getBlob('huge/layer', blob.digest, blob.size));
    const rss = sampler.stop();
    return {
      ...rss,
      pushMBps: blob.size / MB / push.seconds,
      pullMBps: blob.size / MB / pull.seconds,
    };
  } finally {
    sampler.stop();
    client.close();
  }
}

function p(latencies, q) {
  const s = [...latencies].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

const FLOOD = fileURLToPath(new URL('./lib/login-flood.mjs', import.meta.url));

/**
 * 7. Login abuse (Meridian with auth on): an honest client GETs a 100-byte blob in a loop, one
 * request at a time, with Basic credentials (verified once, then remembered), for `seconds`
 * idle and then `seconds` while a separate process keeps `concurrency` bogus logins in flight
 * (unknown usernames, a new address each: see lib/login-flood.mjs). Returns both p99s and their
 * ratio, and what the flood got.
 */
export async function loginAbuse(target, { seconds, concurrency = 100, password }) {
  const authorization = `Basic ${Buffer.from(`owner:${password}`).toString('base64')}`;
  const client = new RegistryClient(target.url, { maxSockets: 1, headers: { authorization } });
  let flood;
  try {
    const blob = memBlob(randomBytes(100));
    await client.uploadBlob('login/app', blob);
    const sample = async (ms) => {
      const latencies = [];
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const t0 = performance.now();
        await client.getBlob('login/app', blob.digest, blob.size);
        latencies.push(performance.now() - t0);
      }
      return latencies;
    };
    await sample(1000); // connections, JIT
    const idle = await sample(seconds * 1000);
    flood = spawn(process.execPath, [FLOOD, target.url, String(concurrency)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    flood.stdout.on('data', (d) => (out += d));
    while (!out.includes('ready\n')) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 500)); // let the flood fill the server's queue
    const loaded = await sample(seconds * 1000);
    const exited = new Promise((r) => flood.once('exit', r));
    flood.kill('SIGTERM');
    await exited;
    flood = undefined;
    const counts = JSON.parse(out.slice(out.indexOf('\n') + 1));
    const idleP99 = p(idle, 0.99);
    const loadedP99 = p(loaded, 0.99);
    return {
      idleP50Ms: p(idle, 0.5),
      idleP99Ms: idleP99,
      loadedP50Ms: p(loaded, 0.5),
      loadedP99Ms: loadedP99,
      p99Ratio: loadedP99 / idleP99,
      honestRequests: { idle: idle.length, loaded: loaded.length },
      flood: counts,
      floodPerSecond: counts.total / (seconds + 0.5),
    };
  } finally {
    flood?.kill('SIGKILL');
    client.close();
  }
}

export { MiB };
export { eventLatency } from './scenario-events.mjs';
