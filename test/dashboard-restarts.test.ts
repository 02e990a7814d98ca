/**
 * The dashboard shows the child processes `meridian dev` restarted (issue 17): what died, when,
 * why, and the pid it runs as now — read from the regions API, which returns the restarts dev
 * records in the cluster's Redis (test/dev/dev-crash.test.ts checks that dev records them).
 * Outside dev none are recorded and the section stays hidden. In Debian's chromium.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createRedis } from '@meridian/redis';
import { ProcessRestarts } from '@meridian/replication';
import { startCluster, type TestCluster } from './helpers/cluster';

const CHROMIUM = '/usr/bin/chromium';

describe('dashboard: processes restarted by meridian dev', () => {
  let c: TestCluster;
  let browser: Browser;
  let page: Page;
  let restarts: ProcessRestarts;
  let close: () => void;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (Debian package)`);
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
    const redis = createRedis(c.redis.url);
    close = () => redis.disconnect();
    restarts = new ProcessRestarts(redis, c.config.replication.prefix);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    close?.();
    await c?.close();
  });

  it('lists none outside dev, then each restart with its time, reason and pids', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${c.primary.url}/dashboard/`);
    await page.locator('#regions tr[data-region="westeurope"]').waitFor();
    expect(await page.locator('#restarts-section').isHidden()).toBe(true);
    const regions = (await (
      await fetch(`${c.primary.url}/meridian/v1/replication/regions`)
    ).json()) as Record<string, unknown>;
    expect(regions.restarts).toBeUndefined();

    // What meridian dev records when a replica's node is killed, then the worker exits.
    const exitedAt = new Date(Date.now() - 90_000).toISOString();
    await restarts.record({
      process: 'region westeurope',
      kind: 'node',
      region: 'westeurope',
      pid: 4101,
      exitedAt,
      reason: 'was killed by SIGKILL',
      restartedAt: new Date(Date.now() - 89_000).toISOString(),
      newPid: 4202,
    });
    await restarts.record({
      process: 'worker',
      kind: 'worker',
      pid: 4103,
      exitedAt: new Date().toISOString(),
      reason: 'exited with code 1',
      restartedAt: new Date().toISOString(),
      newPid: 4303,
    });

    const node = page.locator('#restarts tr[data-process="region westeurope"]');
    await node.waitFor({ timeout: 10_000 }); // the next poll (every 2 s)
    expect(await page.locator('#restarts-section').isVisible()).toBe(true);
    const text = async (row: typeof node, label: string) =>
      (await row.locator(`td[data-label="${label}"]`).textContent())?.trim();
    expect(await text(node, 'Reason')).toBe('was killed by SIGKILL');
    expect(await text(node, 'Pid')).toBe('4101 → 4202');
    expect(await text(node, 'Exited')).toMatch(/^\d\d:\d\d:\d\d \(1 m \d+ s ago\)$/);
    expect(await node.locator('td[data-label="Exited"] span').getAttribute('title')).toBe(exitedAt);
    const worker = page.locator('#restarts tr[data-process="worker"]');
    expect(await text(worker, 'Reason')).toBe('exited with code 1');
    expect(await text(worker, 'Pid')).toBe('4103 → 4303');
    // Newest first.
    const rows = await page.locator('#restarts tbody tr').all();
    const order = await Promise.all(rows.map((r) => r.getAttribute('data-process')));
    expect(order).toEqual(['worker', 'region westeurope']);
    expect(errors).toEqual([]);
  });
});
