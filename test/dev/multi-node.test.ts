/**
 * Several nodes per region, on real processes: `meridian dev --nodes-per-region 2` starts two
 * `serve` nodes per region and the gateway shares each region's requests between them. An upload
 * whose POST, PATCHes and PUT alternate between the primary's two nodes succeeds; a node killed
 * during a loop of pulls costs no pull (the gateway sends nothing more to it, its region keeps
 * serving, dev restarts it).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevPids } from '../../packages/cli/src/dev';
import { nodeOptionsFor } from '../../packages/cli/src/node-options';
import { createClientSandbox, skopeoCopy, type ClientSandbox } from '../helpers/clients';
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
import {
  alive,
  childPids,
  freePortRange,
  readPids,
  startDev,
  stopDev,
  type RunningDev,
} from './dev-harness';

jest.setTimeout(300_000);

const REGIONS = ['eastus', 'westeurope'];
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

describe('meridian dev --nodes-per-region 2 behind the gateway', () => {
  let data: string;
  let port: number;
  let dev: RunningDev | undefined;
  let pids: DevPids;
  const started: number[] = [];
  let sb: ClientSandbox;
  let image: Image;

  /** The gateway as a client of region `i` (0 eastus, 1 westeurope) sees it. */
  const gw = (i: number) => `http://127.0.0.${i + 1}:${port}`;
  const nodeUrl = (region: number, node: number) => `127.0.0.1:${port + 1 + region * 2 + node}`;

  /** Requests the gateway sent to each node of eastus so far. */
  async function eastNodeCounts(): Promise<number[]> {
    const text = await (await fetch(`${gw(0)}/metrics`)).text();
    return [0, 1].map((n) => {
      const line = text
        .split('\n')
        .find((l) =>
          l.startsWith(
            `meridian_gateway_node_requests_total{region="eastus",node="${nodeUrl(0, n)}"}`,
          ),
        );
      return line ? Number(line.split(' ').pop()) : 0;
    });
  }

  /** Sends one request through the gateway; returns the response and the eastus node that took it. */
  async function viaGateway(path: string, init: RequestInit) {
    const before = await eastNodeCounts();
    const res = await fetch(`${gw(0)}${path}`, init);
    const body = Buffer.from(await res.arrayBuffer());
    const after = await eastNodeCounts();
    const node = after.findIndex((c, i) => c === before[i]! + 1);
    return { res, body, node };
  }

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'meridian-dev-nodes-'));
    // gateway, 2 regions × 2 nodes, Redis, worker metrics
    port = await freePortRange(7, REGIONS.length);
    dev = await startDev([
      '--port',
      String(port),
      '--data',
      data,
      '--regions',
      REGIONS.join(','),
      '--nodes-per-region',
      '2',
      '--latency',
      'eastus-westeurope=5',
    ]);
    pids = readPids(data);
    started.push(...childPids(pids));
    sb = await createClientSandbox();
    // Small blobs (~8 KiB): a node answers each in one write, so the kill below lands between
    // responses or before one, which the gateway retries on the region's other node. A response
    // cut in the middle of its body cannot be replayed by any proxy; the client retries it.
    image = buildImage({ layers: [randomLayer(), randomLayer()] });
    writeOciLayout(join(sb.dir, 'src'), { v1: image });
  });

  afterAll(async () => {
    await stopDev(dev, [...started, ...childPids(readPidsIfAny())]);
    await sb?.close();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  function readPidsIfAny(): DevPids {
    try {
      return readPids(data);
    } catch {
      return { dev: 0, regions: {}, nodes: {} };
    }
  }

  it('runs two nodes per region, each on its own port, written down in pids.json', async () => {
    expect(Object.keys(pids.nodes)).toEqual(REGIONS);
    for (const r of REGIONS) {
      expect(pids.nodes[r]).toHaveLength(2);
      for (const pid of pids.nodes[r]!) {
        expect(alive(pid)).toBe(true);
        // With the V8 settings Meridian ships with (ADR 0028), unless the operator set others.
        const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        expect(environ).toContain(`NODE_OPTIONS=${nodeOptionsFor(process.env)}`);
      }
    }
    for (const [r] of REGIONS.entries())
      for (const n of [0, 1])
        expect((await fetch(`http://${nodeUrl(r, n)}/readyz`)).status).toBe(200);
    expect(dev!.output()).toContain(
      `primary eastus         http://${nodeUrl(0, 0)} http://${nodeUrl(0, 1)}`,
    );
  });

  it('completes an upload whose POST, PATCHes and PUT alternate between the primary nodes', async () => {
    const layer = randomLayer({ files: 1, fileSize: 200 * 1024 });
    const half = Math.floor(layer.data.length / 2);
    const post = await viaGateway('/v2/team/chunked/blobs/uploads/', { method: 'POST' });
    expect(post.res.status).toBe(202);
    expect(post.res.headers.get('x-meridian-region')).toBe('eastus');
    const nodes = [post.node];
    let location = post.res.headers.get('location')!;
    const chunks = [layer.data.subarray(0, half), layer.data.subarray(half)];
    let offset = 0;
    for (const chunk of chunks) {
      const patch = await viaGateway(
        new URL(location, gw(0)).pathname + new URL(location, gw(0)).search,
        {
          method: 'PATCH',
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${offset}-${offset + chunk.length - 1}`,
          },
          body: chunk,
        },
      );
      expect(patch.res.status).toBe(202);
      offset += chunk.length;
      expect(patch.res.headers.get('range')).toBe(`0-${offset - 1}`);
      nodes.push(patch.node);
      location = patch.res.headers.get('location')!;
    }
    const target = new URL(location, gw(0));
    target.searchParams.set('digest', layer.digest);
    const put = await viaGateway(target.pathname + target.search, { method: 'PUT' });
    expect(put.res.status).toBe(201);
    nodes.push(put.node);
    // Every request landed on the other node than the one before it.
    expect(nodes.every((n) => n === 0 || n === 1)).toBe(true);
    for (let i = 1; i < nodes.length; i++) expect(nodes[i]).not.toBe(nodes[i - 1]);

    const got = await fetch(`${gw(0)}/v2/team/chunked/blobs/${layer.digest}`);
    expect(got.status).toBe(200);
    expect(digestOf(Buffer.from(await got.arrayBuffer()))).toBe(layer.digest);
  });

  it('pushes an image with skopeo through the gateway, shared between the primary nodes', async () => {
    const before = await eastNodeCounts();
    await skopeoCopy(sb, `oci:${join(sb.dir, 'src')}:v1`, `docker://127.0.0.1:${port}/demo/app:v1`);
    const after = await eastNodeCounts();
    expect(after[0]!).toBeGreaterThan(before[0]!);
    expect(after[1]!).toBeGreaterThan(before[1]!);
    const m = await fetch(`${gw(0)}/v2/demo/app/manifests/v1`, { headers: { accept: ACCEPT } });
    expect(m.status).toBe(200);
    expect(Buffer.from(await m.arrayBuffer()).equals(image.manifest.data)).toBe(true);
  });

  it('loses no pull while a node of the region is killed: the gateway marks it down, the region serves on', async () => {
    // westeurope holds the image (replicated or fetched), so its clients' pulls stay in it.
    await waitFor(
      async () => {
        const r = await fetch(`${gw(1)}/v2/demo/app/manifests/v1`, { headers: { accept: ACCEPT } });
        return r.status === 200 && r.headers.get('x-meridian-region') === 'westeurope';
      },
      'westeurope to serve the image',
      60_000,
    );
    const failures: string[] = [];
    const regions = new Set<string>();
    let pulls = 0;
    const pullOnce = async (): Promise<void> => {
      try {
        const m = await fetch(`${gw(1)}/v2/demo/app/manifests/v1`, { headers: { accept: ACCEPT } });
        const body = Buffer.from(await m.arrayBuffer());
        regions.add(m.headers.get('x-meridian-region') ?? '?');
        if (m.status !== 200 || !body.equals(image.manifest.data))
          throw new Error(`manifest: ${m.status} ${body.toString().slice(0, 200)}`);
        for (const b of blobsOf(image)) {
          const r = await fetch(`${gw(1)}/v2/demo/app/blobs/${b.digest}`);
          const data = Buffer.from(await r.arrayBuffer());
          regions.add(r.headers.get('x-meridian-region') ?? '?');
          if (r.status !== 200 || digestOf(data) !== b.digest)
            throw new Error(`blob ${b.digest}: ${r.status}`);
        }
        pulls++;
      } catch (err) {
        failures.push((err as Error).message);
      }
    };
    let stop = false;
    const loops = Array.from({ length: 3 }, async () => {
      while (!stop) await pullOnce();
    });
    await waitFor(async () => pulls >= 10, 'pulls to run', 30_000);
    const victim = pids.nodes.westeurope![1]!;
    const killedAt = pulls;
    process.kill(victim, 'SIGKILL');
    // The gateway marks it down (the first request it refuses does) and sends it nothing more.
    await waitFor(
      async () => {
        const res = await fetch(`${gw(0)}/meridian/v1/gateway/regions`);
        const body = (await res.json()) as {
          regions: { name: string; healthy: boolean; nodes: { healthy: boolean }[] }[];
        };
        const west = body.regions.find((r) => r.name === 'westeurope')!;
        return west.healthy && west.nodes[1]?.healthy === false;
      },
      'the gateway to mark the killed node down while its region stays healthy',
      20_000,
    );
    // A real client pulls meanwhile too.
    const out = sb.path('pull-during-kill');
    await skopeoCopy(sb, `docker://127.0.0.2:${port}/demo/app:v1`, `oci:${out}:v1`);
    const layout = readOciLayout(out);
    expect(layout.manifests[0]?.digest).toBe(image.manifest.digest);
    await waitFor(async () => pulls >= killedAt + 30, 'pulls to go on after the kill', 60_000);
    // dev restarts the node; pulls go on through it.
    await waitFor(
      async () => {
        const now = readPids(data).nodes.westeurope?.[1];
        return now !== undefined && now !== victim && alive(now);
      },
      'dev to restart the killed node',
      30_000,
    );
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect([...regions]).toEqual(['westeurope']);
    expect(dev!.output()).toContain(
      `meridian dev: region westeurope node 2 (pid ${victim}) was killed by SIGKILL; restarting it in 1 s`,
    );
    started.push(...childPids(readPids(data)));
    expect(readFileSync(join(data, 'cluster.json'), 'utf8')).toContain(nodeUrl(1, 1));
  });
});
