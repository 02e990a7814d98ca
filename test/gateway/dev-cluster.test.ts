/**
 * `meridian dev` end to end, as a user runs it: the built CLI starts Redis, three regions, a worker
 * and the gateway; skopeo pushes, pulls, inspects, lists and deletes through the gateway's
 * addresses (127.0.0.N selects the client's home region); a replica is killed, dev restarts it, and
 * its clients move away and come back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DevPids } from '../../packages/cli/src/dev';
import {
  createClientSandbox,
  skopeoCopy,
  skopeoDelete,
  skopeoInspect,
  skopeoListTags,
  type ClientSandbox,
} from '../helpers/clients';
import {
  blobsOf,
  buildImage,
  digestOf,
  randomLayer,
  readOciLayout,
  writeOciLayout,
  type Image,
} from '../helpers/oci-layout';
import { waitFor } from '../helpers/wait';

jest.setTimeout(300_000);

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');
const REGIONS = ['eastus', 'westeurope', 'southeastasia'] as const;
/** Small, but ordered: westeurope's next region is eastus, southeastasia's is westeurope. */
const LATENCY = 'eastus-westeurope=5,eastus-southeastasia=10,westeurope-southeastasia=8';
const REPO = 'demo/app';
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
/** Auth off: this suite is about topology (test/auth drives clusters with auth on). */
const AUTH_OFF = { ...process.env, MERIDIAN_AUTH_ENABLED: 'false' };

/** Whether `host:port` can be bound now. */
function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, host, () => s.close(() => done(true)));
  });
}

/**
 * A base port with `n` free ports after it on 127.0.0.1 and the base free on 127.0.0.2/3 too
 * (`meridian dev` puts the gateway on the base, regions, Redis and worker metrics on the next).
 */
async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+), where other suites' port-0 servers land.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = (await canBind('127.0.0.2', base)) && (await canBind('127.0.0.3', base));
    for (let i = 0; ok && i < n; i++) ok = await canBind('127.0.0.1', base + i);
    if (ok) return base;
  }
  throw new Error('no free range of loopback ports');
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((done) => {
    const t = setTimeout(() => done(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      done(true);
    });
  });
}

describe('meridian dev: three regions behind the gateway, driven by skopeo', () => {
  let data: string;
  let port: number;
  let dev: ChildProcess;
  let devOutput = '';
  let pids: DevPids;
  let frozen: number | undefined;
  let sb: ClientSandbox;
  let image: Image;
  let layout: string;
  const timings: Record<string, number> = {};
  let pushedAt = 0;

  /** The gateway address a client of region `i` (0-based) connects to. */
  const gw = (i: number) => `127.0.0.${i + 1}:${port}`;
  const ref = (i: number, r = `${REPO}:v1`) => `docker://${gw(i)}/${r}`;

  /** GET through the gateway as a client of region `i`: status, who served it, body. */
  async function get(i: number, path: string, init: RequestInit = {}) {
    const res = await fetch(`http://${gw(i)}${path}`, {
      ...init,
      headers: { accept: ACCEPT, ...init.headers },
      signal: AbortSignal.timeout(10_000),
    });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, region: res.headers.get('x-meridian-region'), body };
  }

  async function gatewayMetric(name: string, labels: string): Promise<number> {
    const text = (await get(0, '/metrics')).body.toString();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  /** Asserts an OCI layout written by `skopeo copy` holds exactly `image` under `tag`. */
  function expectLayoutHolds(dir: string, tag: string): void {
    const l = readOciLayout(dir);
    const top = l.manifests.find(
      (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
    );
    expect(top?.digest).toBe(image.manifest.digest);
    for (const b of blobsOf(image)) expect(digestOf(l.blob(b.digest))).toBe(b.digest);
  }

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    data = mkdtempSync(join(tmpdir(), 'meridian-dev-'));
    // gateway, 3 regions, Redis, worker metrics
    port = await freePortRange(REGIONS.length + 3);
    const started = Date.now();
    dev = spawn(
      process.execPath,
      [CLI, 'dev', '--port', String(port), '--data', data, '--latency', LATENCY],
      { stdio: ['ignore', 'pipe', 'pipe'], env: AUTH_OFF },
    );
    dev.stdout!.on('data', (c: Buffer) => (devOutput += c.toString()));
    dev.stderr!.on('data', (c: Buffer) => (devOutput += c.toString()));
    await waitFor(
      async () => {
        if (dev.exitCode !== null) throw new Error(`meridian dev exited:\n${devOutput}`);
        return devOutput.includes('Meridian dev cluster is up');
      },
      'meridian dev to come up',
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${devOutput}`);
    });
    timings.startupMs = Date.now() - started;
    pids = JSON.parse(readFileSync(join(data, 'pids.json'), 'utf8')) as DevPids;

    sb = await createClientSandbox();
    image = buildImage({
      layers: [randomLayer(), randomLayer({ files: 1, fileSize: 512 * 1024 })],
    });
    layout = join(sb.dir, 'src');
    writeOciLayout(layout, { v1: image });
  });

  afterAll(async () => {
    if (frozen && alive(frozen)) process.kill(frozen, 'SIGCONT');
    if (dev && dev.exitCode === null) {
      dev.kill('SIGTERM');
      if (!(await exited(dev, 10_000))) dev.kill('SIGKILL');
    }
    // Anything dev started that outlived it (it should not): end it by its recorded pid.
    if (pids) {
      const rest = [pids.redis, pids.worker, pids.gateway, ...Object.values(pids.regions)];
      for (const pid of rest) if (alive(pid)) process.kill(pid!, 'SIGKILL');
    }
    await sb?.close();
    if (data) rmSync(data, { recursive: true, force: true });
    process.stderr.write(`\nmeridian dev timings (ms): ${JSON.stringify(timings)}\n`);
  });

  it('writes down the processes it started in <data>/pids.json', () => {
    expect(Object.keys(pids.regions)).toEqual([...REGIONS]);
    for (const pid of [pids.redis, pids.worker, pids.gateway, ...Object.values(pids.regions)])
      expect(alive(pid)).toBe(true);
  });

  it("pushes through a replica region's gateway address: the primary takes every write", async () => {
    const writesBefore = await gatewayMetric(
      'meridian_gateway_requests_total',
      'region="eastus",kind="write"',
    );
    const digestFile = sb.path('push.digest');
    const started = Date.now();
    await skopeoCopy(sb, `oci:${layout}:v1`, ref(1), ['--digestfile', digestFile]);
    timings.pushMs = Date.now() - started;
    pushedAt = Date.now();
    expect(readFileSync(digestFile, 'utf8').trim()).toBe(image.manifest.digest);

    expect(
      await gatewayMetric('meridian_gateway_requests_total', 'region="eastus",kind="write"'),
    ).toBeGreaterThan(writesBefore);
    for (const r of REGIONS.slice(1))
      expect(
        await gatewayMetric('meridian_gateway_requests_total', `region="${r}",kind="write"`),
      ).toBe(0);
    // An upload session started by a westeurope client lives on the primary.
    const post = await get(1, `/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect(post).toMatchObject({ status: 202, region: 'eastus' });
  });

  it('replicates the image to every region; each region serves its own clients', async () => {
    await waitFor(
      async () => {
        const res = await get(0, `/meridian/v1/replication/status?repository=${REPO}&reference=v1`);
        const status = JSON.parse(res.body.toString()) as { regions: { state: string }[] };
        return (
          status.regions.length === REGIONS.length &&
          status.regions.every((r) => r.state === 'replicated')
        );
      },
      'the image to reach every region',
      60_000,
    );
    timings.convergeMs = Date.now() - pushedAt;
    for (const [i, region] of REGIONS.entries()) {
      const m = await get(i, `/v2/${REPO}/manifests/v1`);
      expect(m).toMatchObject({ status: 200, region });
      expect(m.body.equals(image.manifest.data)).toBe(true);
      const layer = image.layers[1]!;
      const b = await get(i, `/v2/${REPO}/blobs/${layer.digest}`);
      expect(b).toMatchObject({ status: 200, region });
      expect(digestOf(b.body)).toBe(layer.digest);
    }
  });

  it('pulls, inspects and lists tags with skopeo through every region', async () => {
    const out = sb.path('pull-west');
    await skopeoCopy(sb, ref(1), `oci:${out}:v1`);
    expectLayoutHolds(out, 'v1');
    const info = await skopeoInspect(sb, ref(2));
    expect(info.Digest).toBe(image.manifest.digest);
    expect(info.Layers).toEqual(image.layers.map((l) => l.digest));
    expect(await skopeoListTags(sb, `docker://${gw(2)}/${REPO}`)).toEqual(['v1']);
    expect(await skopeoListTags(sb, `docker://${gw(0)}/${REPO}`)).toEqual(['v1']);
  });

  it("moves a killed replica's clients to the next region within seconds; dev restarts it and they come back", async () => {
    const west = pids.regions.westeurope!;
    const killedAt = Date.now();
    process.kill(west, 'SIGKILL');
    await waitFor(async () => !alive(west), 'westeurope to exit', 5000);

    // Reads from westeurope's clients keep succeeding, served by the next region (eastus).
    const first = await get(1, `/v2/${REPO}/manifests/v1`);
    timings.firstReadAfterKillMs = Date.now() - killedAt;
    expect(first).toMatchObject({ status: 200, region: 'eastus' });
    await waitFor(
      async () => {
        const res = await get(0, '/meridian/v1/gateway/regions');
        const body = JSON.parse(res.body.toString()) as {
          regions: { name: string; healthy: boolean }[];
        };
        return body.regions.find((r) => r.name === 'westeurope')?.healthy === false;
      },
      'the gateway to mark westeurope down',
      10_000,
    );
    timings.markedDownMs = Date.now() - killedAt;
    const out = sb.path('pull-during-outage');
    await skopeoCopy(sb, ref(1), `oci:${out}:v1`);
    expectLayoutHolds(out, 'v1');
    expect(
      await gatewayMetric('meridian_gateway_failovers_total', 'home="westeurope",region="eastus"'),
    ).toBeGreaterThan(0);
    // The other regions' clients are not disturbed.
    expect(await get(2, `/v2/${REPO}/manifests/v1`)).toMatchObject({
      status: 200,
      region: 'southeastasia',
    });

    // meridian dev says so, restarts the replica on the same data, and its clients come back.
    await waitFor(
      async () => {
        const r = await get(1, `/v2/${REPO}/manifests/v1`);
        return r.status === 200 && r.region === 'westeurope';
      },
      "westeurope's clients to return to it",
      60_000,
    );
    timings.returnAfterRestartMs = Date.now() - killedAt;
    expect(devOutput).toContain(
      `meridian dev: region westeurope (pid ${west}) was killed by SIGKILL; restarting it in 1 s`,
    );
    await waitFor(
      async () => devOutput.includes('meridian dev: region westeurope is back (pid '),
      'dev to say the replica is back',
      10_000,
    );
    const now = JSON.parse(readFileSync(join(data, 'pids.json'), 'utf8')) as DevPids;
    expect(now.regions.westeurope).not.toBe(west);
    expect(alive(now.regions.westeurope)).toBe(true);
    pids = now;
    const again = sb.path('pull-after-return');
    await skopeoCopy(sb, ref(1), `oci:${again}:v1`);
    expectLayoutHolds(again, 'v1');
  });

  it('moves reads off a hung replica (SIGSTOP) after the upstream timeout, and back on SIGCONT', async () => {
    frozen = pids.regions.southeastasia!;
    process.kill(frozen, 'SIGSTOP');
    // The first read waits for gateway.upstreamTimeoutMs (5 s), then goes to the next region.
    let started = Date.now();
    expect(await get(2, `/v2/${REPO}/manifests/v1`)).toMatchObject({
      status: 200,
      region: 'westeurope',
    });
    timings.hungFirstReadMs = Date.now() - started;
    // Later reads skip the region at once: it is marked down.
    started = Date.now();
    expect(await get(2, `/v2/${REPO}/manifests/v1`)).toMatchObject({
      status: 200,
      region: 'westeurope',
    });
    timings.hungNextReadMs = Date.now() - started;
    const out = sb.path('pull-while-hung');
    await skopeoCopy(sb, ref(2), `oci:${out}:v1`);
    expectLayoutHolds(out, 'v1');

    process.kill(frozen, 'SIGCONT');
    frozen = undefined;
    started = Date.now();
    await waitFor(
      async () => {
        const r = await get(2, `/v2/${REPO}/manifests/v1`);
        return r.status === 200 && r.region === 'southeastasia';
      },
      "southeastasia's clients to return to it",
      15_000,
    );
    timings.returnAfterResumeMs = Date.now() - started;
  });

  it('deletes through the gateway; every region stops serving the manifest', async () => {
    await skopeoDelete(sb, ref(2));
    expect((await get(0, `/v2/${REPO}/manifests/${image.manifest.digest}`)).status).toBe(404);
    const deletedAt = Date.now();
    for (const i of [1, 2])
      await waitFor(
        async () => (await get(i, `/v2/${REPO}/manifests/${image.manifest.digest}`)).status === 404,
        `the delete to reach ${REGIONS[i]}`,
        60_000,
      );
    timings.deleteConvergeMs = Date.now() - deletedAt;
  });

  it('stops every process it started on SIGTERM and keeps the data', async () => {
    dev.kill('SIGTERM');
    expect(await exited(dev, 10_000)).toBe(true);
    const started = [pids.redis, pids.worker, pids.gateway, ...Object.values(pids.regions)];
    await waitFor(async () => started.every((pid) => !alive(pid)), 'every child to exit', 10_000);
    expect(existsSync(join(data, 'pids.json'))).toBe(false);
    expect(existsSync(join(data, 'cluster.json'))).toBe(true);
    for (const r of REGIONS) expect(existsSync(join(data, r, 'blobs'))).toBe(true);
  });
});
