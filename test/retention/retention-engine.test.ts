import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  attachUntaggedRetention,
  compileRule,
  RetentionService,
  UntaggedRetention,
  type RetentionRule,
} from '@meridian/lifecycle';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  blobOf,
  imageManifest,
  pushBlob,
  pushImage,
  randomBlob,
  sha256,
  sleep,
} from '../gc/gc-helpers';

const DAY = 86_400_000;

/** Retention over the registry's domain: fs driver, the durable event subscriber, a movable clock. */
describe('retention', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  let layout: RepositoryLayout;
  let untagged: UntaggedRetention;
  let offset: number;
  let removed: { repository: string; rule: string; tags: string[]; manifests: string[] }[];
  let detach: () => Promise<void>;
  const now = () => Date.now() + offset;

  const service = (rules: RetentionRule[] = []) =>
    new RetentionService({
      store,
      layout,
      target: purgeTarget(reg, layout),
      rules: rules.map(compileRule),
      untagged,
      now,
      onRemoved: async (repository, rule, r) => {
        removed.push({ repository, rule, tags: r.tags, manifests: r.manifests });
        await reg.events.emit({ type: 'retentionFinished', repository, rule, ...r, at: now() });
      },
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-retention-'));
    store = await openStore(dir);
    reg = new Registry({ store, cache: { ttlMs: 0 } });
    layout = new RepositoryLayout(store);
    offset = 0;
    removed = [];
    untagged = new UntaggedRetention(store, now);
    detach = await attachUntaggedRetention(reg.events, untagged);
  });
  afterEach(async () => {
    await detach();
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const revisions = async (repo: string) => (await layout.listRevisions(repo)).sort();
  const scheduledCount = async (n: number) => {
    for (let i = 0; i < 200 && (await untagged.scheduled()).length < n; i++) await sleep(20);
    return (await untagged.scheduled()).map((r) => r.digest).sort();
  };

  it('deletes a manifest N days after a tag left it, re-checks it when due, and never touches one untagged before the policy', async () => {
    // Untagged while the policy is off: never scheduled.
    const before = await pushImage(reg, 'app', 'v1', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'app', 'v1', randomBlob(), [randomBlob()]);
    await untagged.setPolicy({ enabled: true, days: 3 });
    offset = 1000; // the untaggings below come after the moment it was enabled
    const a = await pushImage(reg, 'app', 'v2', randomBlob(), [randomBlob()]);
    const b = await pushImage(reg, 'app', 'v2', randomBlob(), [randomBlob()]); // a loses v2
    const c = await pushImage(reg, 'app', 'v3', randomBlob(), [randomBlob()]);
    await reg.manifests.delete('app', 'v3'); // c loses v3 ...
    const cBytes = (await reg.manifests.get('app', c)).bytes;
    await reg.manifests.put('app', 'v3-again', cBytes, OCI_MANIFEST); // ... and gets a tag back

    // A multi-platform index with a signature, then its tag moves away.
    const children = [];
    for (let i = 0; i < 2; i++) {
      const [cfg, l] = [randomBlob(), randomBlob()];
      await Promise.all([cfg, l].map((x) => pushBlob(reg, 'multi', x)));
      const bytes = imageManifest(cfg, [l]);
      await reg.manifests.put('multi', sha256(bytes), bytes, OCI_MANIFEST);
      children.push({ mediaType: OCI_MANIFEST, digest: sha256(bytes), size: bytes.length });
    }
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }),
    );
    await reg.manifests.put('multi', 'latest', index, OCI_INDEX);
    const sigCfg = blobOf(Buffer.from('{}'));
    const sigLayer = randomBlob();
    await Promise.all([sigCfg, sigLayer].map((x) => pushBlob(reg, 'multi', x)));
    const sig = imageManifest(sigCfg, [sigLayer], {
      subject: { mediaType: OCI_INDEX, digest: sha256(index), size: index.length },
    });
    await reg.manifests.put('multi', sha256(sig), sig, OCI_MANIFEST);
    const next = await pushImage(reg, 'multi', 'latest', randomBlob(), [randomBlob()]);

    expect(await scheduledCount(3)).toEqual([a, c, sha256(index)].sort());
    const svc = service();
    // Two days on: nothing is due.
    offset = 2 * DAY;
    expect((await svc.run({ dryRun: true })).untagged!.totals.manifests).toBe(0);
    expect((await svc.run({})).untagged!.totals.manifests).toBe(0);
    expect(await revisions('app')).toContain(a);

    // Four days on: the dry run names exactly what the run removes.
    offset = 4 * DAY;
    const dry = await svc.run({ dryRun: true });
    const planned = dry.untagged!.repositories.flatMap((r) => r.manifests.map((m) => m.digest));
    expect(planned.sort()).toEqual(
      [a, sha256(index), ...children.map((x) => x.digest), sha256(sig)].sort(),
    );
    const run = await svc.run({});
    expect(run.untagged!.totals).toEqual(dry.untagged!.totals);
    const appLeft = await revisions('app');
    expect(appLeft).not.toContain(a);
    expect(appLeft).toEqual(expect.arrayContaining([before, b, c])); // c is tagged again
    expect(await revisions('multi')).toEqual([next]);
    // Every record was re-checked and dropped; the run said what it removed, per repository.
    expect(await untagged.scheduled()).toEqual([]);
    expect(removed.map((r) => [r.repository, r.rule, r.manifests.length]).sort()).toEqual([
      ['app', 'untagged', 1],
      ['multi', 'untagged', 4],
    ]);
  });

  it('keeps a due manifest that is locked, and drops nothing when the policy is off', async () => {
    await untagged.setPolicy({ enabled: true, days: 0 });
    offset = 1000;
    const a = await pushImage(reg, 'lk', 'v1', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'lk', 'v1', randomBlob(), [randomBlob()]);
    expect(await scheduledCount(1)).toEqual([a]);
    await reg.locks.update('lk', { scope: 'manifest', digest: a }, { deleteEnabled: false });
    offset = 2000;
    const run = await service().run({});
    expect(run.untagged!.repositories[0]!.locked).toEqual([expect.objectContaining({ digest: a })]);
    expect(await revisions('lk')).toContain(a);
    // Still scheduled: it goes once unlocked.
    expect((await untagged.scheduled()).map((r) => r.digest)).toEqual([a]);
    await untagged.setPolicy({ enabled: false, days: 0 });
    await reg.locks.update('lk', { scope: 'manifest', digest: a }, { deleteEnabled: true });
    expect((await service().run({})).untagged).toBeUndefined();
    expect(await revisions('lk')).toContain(a);
  });

  it("stops a rule's first run, then the share limit; --force runs it and the dry run equals the run", async () => {
    for (let i = 1; i <= 6; i++) {
      await pushImage(reg, 'svc', `b${i}`, randomBlob(), [randomBlob()]);
      await sleep(5);
    }
    await pushImage(reg, 'svc', 'stable', randomBlob(), [randomBlob()]);
    const rule: RetentionRule = {
      name: 'old-builds',
      repositories: 'svc',
      tags: 'b.*',
      exclude: 'b6',
      keep: 1,
      untagged: true,
    };
    const svc = service([rule]);
    // First run: plans, removes nothing, says why.
    const first = await svc.run({ rule: 'old-builds' });
    expect(first.rules[0]!.stopped).toMatch(/first run/);
    expect(first.rules[0]!.report.repositories[0]!.tags.map((t) => t.tag).sort()).toEqual([
      'b1',
      'b2',
      'b3',
      'b4',
    ]);
    expect(await layout.listTags('svc')).toHaveLength(7);
    expect((await svc.status()).rules[0]).toMatchObject({ approved: false });

    // Approved: the scheduled run now meets the share limit (4 of 7 tags > 50 %) and stops.
    await svc.approve('old-builds', 'owner');
    const share = await svc.run({});
    expect(share.rules[0]!.stopped).toBeUndefined();
    expect(share.rules[0]!.report.repositories[0]!.refused).toMatch(/over the 50 % limit/);
    expect(await layout.listTags('svc')).toHaveLength(7);
    expect(removed).toEqual([]);

    // --force: the dry run and the run name the same tags and manifests.
    const dry = await svc.run({ rule: 'old-builds', dryRun: true, force: true });
    const run = await svc.run({ rule: 'old-builds', force: true });
    expect(run.rules[0]!.report.totals).toEqual(dry.rules[0]!.report.totals);
    expect(run.rules[0]!.report.totals).toMatchObject({ tags: 4, manifests: 4, refused: 0 });
    expect((await layout.listTags('svc')).sort()).toEqual(['b5', 'b6', 'stable']);
    expect(removed).toEqual([
      {
        repository: 'svc',
        rule: 'old-builds',
        tags: expect.arrayContaining(['b1', 'b2', 'b3', 'b4']) as string[],
        manifests: expect.any(Array) as string[],
      },
    ]);

    // A changed definition is a new rule: its first run only plans again.
    const changed = service([{ ...rule, keep: 0 }]);
    expect((await changed.run({ rule: 'old-builds' })).rules[0]!.stopped).toMatch(/first run/);
    expect((await layout.listTags('svc')).sort()).toEqual(['b5', 'b6', 'stable']);
  });
});
