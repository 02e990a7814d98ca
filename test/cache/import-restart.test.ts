/**
 * Import jobs are durable (ADR 0019): a job's record (status, progress, result or error) lives in
 * the primary's store, so `GET …/import/:id` and `meridian import --job` answer after the primary
 * restarts, and a job that was running when its node died ends `failed` ("interrupted by a
 * restart") instead of staying `running`. The upstream is CNCF Distribution behind a front on
 * loopback that can hold blob requests, so an import is still running when the node is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basic } from '../helpers/auth-node';
import { CLI, meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import type { StorageKind } from '../helpers/node';
import { waitFor } from '../helpers/wait';
import {
  Pusher,
  pushSignedIndex,
  signedIndex,
  startDistribution,
  type Distribution,
} from './upstreams';

const INTERRUPTED = /^interrupted by a restart: the node running it stopped before it finished/;

describe.each<StorageKind>(['fs', 's3'])(
  'import jobs survive a restart of the primary (%s storage)',
  (storage) => {
    let c: TestCluster;
    let dist: Distribution;
    let front: Server;
    let frontHost = '';
    let child: ChildProcess | undefined;
    /** Blob requests wait while this is set; `release` lets them (and later ones) through. */
    let held: Promise<void> | undefined;
    let release = () => {};
    let blobRequests = 0;
    const hold = () => {
      held = new Promise<void>(
        (r) =>
          (release = () => {
            held = undefined;
            r();
          }),
      );
    };

    beforeAll(async () => {
      [c, dist] = await Promise.all([
        startCluster({ regions: ['eastus'], storage }),
        startDistribution(),
      ]);
      const pusher = new Pusher(dist.url, basic(dist.user, dist.password));
      for (const repo of ['lib/one', 'lib/two', 'lib/three'])
        await pushSignedIndex(pusher, repo, 'v1', signedIndex(), false);
      const d = new URL(dist.url);
      front = createServer((req, res) => {
        const forward = () => {
          const up = request(
            {
              host: d.hostname,
              port: d.port,
              method: req.method,
              path: req.url,
              headers: {
                ...req.headers,
                host: d.host,
                authorization: basic(dist.user, dist.password),
              },
            },
            (r) => {
              res.writeHead(r.statusCode ?? 502, r.headers);
              r.pipe(res);
            },
          );
          up.on('error', () => res.destroy());
          req.pipe(up);
        };
        if (!(req.url ?? '').includes('/blobs/')) return forward();
        blobRequests++;
        if (held) void held.then(forward);
        else forward();
      });
      await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
      frontHost = `127.0.0.1:${(front.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      release();
      child?.kill('SIGKILL');
      await c?.close();
      await dist?.close();
      front?.closeAllConnections();
      await new Promise((r) => front?.close(r));
    });

    const owner = basic('owner', 'x');
    const api = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${c.primary.url}/meridian/v1/admin/import${path}`, {
        method,
        headers: { Authorization: owner, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    /** Starts an import whose blob requests are held, and waits until it is running. */
    const startHeld = async (repo: string) => {
      hold();
      const before = blobRequests;
      const start = await api('POST', '', {
        source: `${frontHost}/lib/${repo}:v1`,
        images: [`restart/${repo}:v1`],
      });
      expect(start.status).toBe(202);
      const id = start.body.id as string;
      await waitFor(async () => blobRequests > before, 'the import to ask for a blob');
      expect((await api('GET', `/${id}`)).body).toMatchObject({ id, status: 'running' });
      return id;
    };
    const terminal = (id: string, timeoutMs?: number) =>
      waitFor(
        async () => {
          const r = await api('GET', `/${id}`);
          return r.body.status === 'succeeded' || r.body.status === 'failed' ? r.body : undefined;
        },
        `import ${id} to end`,
        timeoutMs,
      );

    it('a job running when the primary process is killed is readable after the restart, and ends failed as interrupted', async () => {
      // The primary as a process of its own, to kill it mid-import.
      await c.stopNode('eastus');
      child = spawn(
        process.execPath,
        [CLI, 'serve', '--config', c.configFile, '--region', 'eastus'],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      await waitFor(
        async () => (await fetch(`${c.primary.url}/healthz`)).ok,
        'the primary process',
      );
      const id = await startHeld('one');
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      release();

      await c.startNode('eastus');
      const after = await api('GET', `/${id}`);
      expect(after.status).toBe(200);
      expect(after.body).toMatchObject({
        id,
        source: `${frontHost}/lib/one:v1`,
        targets: ['restart/one:v1'],
      });
      // Not running anywhere: once its record is stale (15 s) it is failed, never running forever.
      const job = await terminal(id, 40_000);
      expect(job).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(INTERRUPTED) as unknown,
      });
      expect(typeof job.finishedAt).toBe('string');
      const listed = (await api('GET', '')).body as unknown as { id: string; status: string }[];
      expect(listed.find((j) => j.id === id)?.status).toBe('failed');

      // The CLI follows a job by id and reports how it ended.
      const cli = await meridian(['import', '--job', id, '--url', c.primary.url], {
        MERIDIAN_PASSWORD: 'x',
      });
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(new RegExp(`import ${id} failed: interrupted by a restart`));
    });

    it('a node that stops while importing records the job as interrupted at once; a finished job keeps its result across restarts', async () => {
      const id = await startHeld('two');
      await c.stopNode('eastus');
      release();
      await c.startNode('eastus');
      expect((await api('GET', `/${id}`)).body).toMatchObject({
        id,
        status: 'failed',
        error: expect.stringMatching(INTERRUPTED) as unknown,
      });

      // Run again, it succeeds; its result is still there after another restart.
      const again = await api('POST', '', {
        source: `${frontHost}/lib/two:v1`,
        images: ['restart/two:v1'],
      });
      const done = await terminal(again.body.id as string);
      expect(done.status).toBe('succeeded');
      await c.stopNode('eastus');
      await c.startNode('eastus');
      const kept = await api('GET', `/${again.body.id as string}`);
      expect(kept.body).toMatchObject({ status: 'succeeded', result: done.result });
      expect(
        (
          await fetch(`${c.primary.url}/v2/restart/two/manifests/v1`, {
            headers: { Accept: 'application/vnd.oci.image.index.v1+json' },
          })
        ).status,
      ).toBe(200);
    });
  },
);
