import { createHash } from 'node:crypto';
import { UsageReader } from '@meridian/registry';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { artifact, image, imageIndex, type Image } from '../helpers/images';
import { waitFor } from '../helpers/wait';
import { WebhookReceiver } from '../helpers/webhook-receiver';

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Retention on a three-region cluster with soft delete on: the primary decides, every region
 * follows, webhooks hear `retention_finished` and `soft_delete`, and the bin brings it all back.
 */
describe('retention across regions', () => {
  let c: TestCluster;
  let stores: Map<string, ObjectStore>;
  let receiver: WebhookReceiver;
  let client: RegistryClient;
  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    c = await startCluster({
      softDelete: { enabled: true, retentionDays: 3 },
      webhooks: { allowPrivateTargets: ['loopback'], retryBaseMs: 200 },
      usage: { flushIntervalSeconds: 1 },
      retention: {
        intervalSeconds: 0, // runs are asked for
        untagged: { enabled: true, days: 0 },
        rules: [
          // "Not pulled for a day", at the scale of a test: 20 s.
          {
            name: 'stale',
            repositories: 'team/usage',
            tags: 'pulled|stale',
            notPulledFor: '20s',
            untagged: true,
          },
        ],
      },
    });
    await c.startWorkers();
    stores = new Map(
      await Promise.all(c.regions.map(async (r) => [r.name, await openStore(r.storage)] as const)),
    );
    client = new RegistryClient(c.primary.url);
    const hook = await client.request('POST', '/meridian/v1/admin/webhooks', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'cleanup',
        url: receiver.url,
        actions: ['retention_finished', 'soft_delete', 'delete'],
      }),
    });
    expect(hook.status).toBe(201);
  });
  afterAll(async () => {
    for (const s of stores?.values() ?? []) await s.close();
    await c?.close();
    await receiver?.close();
  });

  const status = (url: string, repo: string, ref: string) =>
    new RegistryClient(url)
      .get(`/v2/${repo}/manifests/${ref}`, { headers: ACCEPT })
      .then((r) => r.status);

  it('a not-pulled rule keeps the image a replica pulled lately, stops at its first run, and removes the rest in every region', async () => {
    const imgs: Record<string, Image> = {};
    for (const tag of ['pulled', 'stale', 'k1', 'k2', 'k3']) {
      imgs[tag] = image();
      await client.pushImage('team/usage', tag, imgs[tag].blobs, imgs[tag].manifest);
    }
    for (const r of c.replicas)
      await waitFor(
        async () => (await status(r.url, 'team/usage', 'k3')) === 200,
        `k3 in ${r.name}`,
      );
    await sleep(21_000); // every push is now older than the rule's 20 s

    // First run: plans (neither `pulled` nor `stale` was pulled yet), stops, removes nothing.
    const first = await meridian(['retention', 'run', 'stale', '--url', c.primary.url]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(3);
    expect(first.stdout).toMatch(/rule stale \(STOPPED: first run, nothing removed\)/);
    expect(first.stdout).toMatch(/team\/usage\s+2\/5\s+2 /);
    // (Read from the store: a GET would be a pull.)
    const primaryLayout = new RepositoryLayout(stores.get(c.primary.name)!);
    expect((await primaryLayout.listTags('team/usage')).sort()).toEqual([
      'k1',
      'k2',
      'k3',
      'pulled',
      'stale',
    ]);

    // Now a replica pulls one of them ("yesterday"); its region's records say so.
    const west = c.replicas[0]!;
    expect(await status(west.url, 'team/usage', 'pulled')).toBe(200);
    const usage = new UsageReader(
      c.regions.map((r) => ({ name: r.name, store: stores.get(r.name)! })),
    );
    await waitFor(
      async () => (await usage.repository('team/usage')).tags.pulled?.lastPulledAt !== undefined,
      'the replica pull recorded',
    );

    // The dry run names what the run removes: only `stale`; `pulled` stays.
    const dry = await meridian([
      'retention',
      'run',
      'stale',
      '--dry-run',
      '--force',
      '--url',
      c.primary.url,
    ]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/dry run: would remove 1 tags and 1 manifests in 1 repositories/);
    const run = await meridian(['retention', 'run', 'stale', '--force', '--url', c.primary.url]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/removed 1 tags and 1 manifests in 1 repositories/);
    for (const r of c.regions) {
      await waitFor(
        async () => (await status(r.url, 'team/usage', imgs.stale!.manifest.digest)) === 404,
        `stale gone from ${r.name}`,
      );
      expect(await status(r.url, 'team/usage', 'pulled')).toBe(200);
      expect(await status(r.url, 'team/usage', 'k1')).toBe(200);
    }
    // Approved by --force: listed so.
    const list = await meridian(['retention', 'list', '--url', c.primary.url]);
    expect(list.stdout).toMatch(/stale\s+team\/usage\s+pulled\|stale\s+yes/);

    // Webhooks: what the run removed, and a delete that went to the recycle bin.
    const finished = await waitFor(
      async () => receiver.of('retention_finished').length > 0 && receiver.of('retention_finished'),
      'retention_finished delivered',
    );
    expect(finished[0]!.json).toMatchObject({
      target: { repository: 'team/usage' },
      retention: { rule: 'stale', tags: ['stale'], manifests: [imgs.stale!.manifest.digest] },
    });
    const soft = await waitFor(
      async () =>
        receiver
          .of('soft_delete')
          .find(
            (x) => (x.json.target as { digest?: string }).digest === imgs.stale!.manifest.digest,
          ),
      'soft_delete delivered',
    );
    expect(soft.json).toMatchObject({ softDelete: { expiresAt: expect.any(String) as string } });
  });

  it('untagged retention takes a multi-platform index with its signature whole in every region; a restore brings it back byte for byte', async () => {
    const plats: Image[] = [image(), image()];
    for (const p of plats)
      await client.pushImage('team/multi', p.manifest.digest, p.blobs, p.manifest);
    const index = imageIndex({ manifests: plats.map((p) => p.manifest) });
    await client.pushImage('team/multi', 'latest', [], index);
    const sig = artifact({ subject: index, artifactType: 'application/vnd.dev.cosign.signature' });
    await client.pushImage('team/multi', sig.manifest.digest, sig.blobs, sig.manifest);
    const next = image();
    await client.pushImage('team/multi', 'latest', next.blobs, next.manifest); // the index loses its tag
    const all = [index.digest, sig.manifest.digest, ...plats.map((p) => p.manifest.digest)];
    for (const r of c.replicas)
      await waitFor(
        async () => (await status(r.url, 'team/multi', sig.manifest.digest)) === 200,
        `the signature in ${r.name}`,
      );

    // days 0: due at once; the durable subscriber scheduled it shortly after the push.
    const gone = await waitFor(async () => {
      const out = await meridian(['retention', 'run', 'untagged', '--url', c.primary.url]);
      if (out.code !== 0) throw new Error(out.stderr);
      return /removed 0 tags and 4 manifests/.test(out.stdout) && out;
    }, 'the untagged index planned and removed');
    expect(gone.stdout).toMatch(/team\/multi/);
    for (const r of c.regions) {
      await waitFor(async () => {
        const s = await Promise.all(all.map((d) => status(r.url, 'team/multi', d)));
        return s.every((x) => x === 404);
      }, `the index, its children and its signature gone from ${r.name}`);
      expect(await status(r.url, 'team/multi', 'latest')).toBe(200);
    }

    const restore = await meridian([
      'manifest',
      'restore',
      `team/multi@${index.digest}`,
      '--url',
      c.primary.url,
    ]);
    expect(restore.stderr).toBe('');
    expect(restore.stdout.trim().split('\n')).toHaveLength(4);
    for (const r of c.regions) {
      const rc = new RegistryClient(r.url);
      await waitFor(async () => {
        const s = await Promise.all(all.map((d) => status(r.url, 'team/multi', d)));
        return s.every((x) => x === 200);
      }, `the index, its children and its signature back in ${r.name}`);
      for (const d of all) {
        const got = await rc.get(`/v2/team/multi/manifests/${d}`, { headers: ACCEPT });
        expect(`sha256:${createHash('sha256').update(got.body).digest('hex')}`).toBe(d);
      }
      const refs = await rc.get(`/v2/team/multi/referrers/${index.digest}`);
      expect(
        refs.json<{ manifests: { digest: string }[] }>().manifests.map((m) => m.digest),
      ).toEqual([sig.manifest.digest]);
    }
  });
});
