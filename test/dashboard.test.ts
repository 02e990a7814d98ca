import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runGateway, type RunningGateway } from '../packages/cli/src/gateway-cmd';
import { startCluster, type TestCluster } from './helpers/cluster';
import { RegistryClient } from './helpers/http';
import { image } from './helpers/images';
import { waitFor } from './helpers/wait';

/** Debian's chromium; playwright never downloads a browser here. */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = resolve(__dirname, '../test-results');

describe('dashboard in a real browser', () => {
  let c: TestCluster;
  let gw: RunningGateway;
  let browser: Browser;
  let page: Page;

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, name), fullPage: true });
  const row = (table: string, region: string) =>
    page.locator(`${table} tr[data-region="${region}"]`);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (Debian package)`);
    mkdirSync(SHOTS, { recursive: true });
    c = await startCluster();
    await c.startWorkers();
    gw = await runGateway({
      ...c.config,
      gateway: { ...c.config.gateway, listen: ['127.0.0.1:0'], healthIntervalMs: 500 },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await c?.close();
  });

  it('is served by every node and the gateway, with its charting library and no external URL', async () => {
    for (const base of [...c.regions.map((r) => r.url), gw.urls[0]!]) {
      const redirect = await fetch(`${base}/dashboard`, { redirect: 'manual' });
      expect(redirect.status).toBe(308);
      expect(redirect.headers.get('location')).toBe('/dashboard/');
      const html = await fetch(`${base}/dashboard/`);
      expect(html.status).toBe(200);
      expect(html.headers.get('content-type')).toMatch(/^text\/html/);
      expect(html.headers.get('content-security-policy')).toContain("default-src 'none'");
      const body = await html.text();
      expect(body).not.toMatch(/https?:\/\//);
      const lib = await fetch(`${base}/dashboard/vendor/uPlot.iife.min.js`);
      expect(lib.status).toBe(200);
      expect((await lib.text()).length).toBeGreaterThan(10_000);
    }
  });

  it('shows a pushed image reach every region, then a stopped region turn unhealthy', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${gw.urls[0]}/dashboard/`);

    // Every region listed and healthy, with its role.
    for (const r of c.regions) {
      await row('#regions', r.name).and(page.locator('[data-health="up"]')).waitFor();
      await expect(
        row('#regions', r.name).locator('td[data-label="Role"]').textContent(),
      ).resolves.toBe(r.role);
    }

    const img = image({ layers: 3, layerSize: 64 * 1024 });
    await new RegistryClient(c.primary.url).pushImage('team/web', 'v1', img.blobs, img.manifest);
    await page.fill('#lookup-input', 'team/web:v1');
    await page.click('#lookup button[type="submit"]');
    // Polling (every 2 s) turns each region's state to "replicated".
    for (const r of c.regions)
      await row('#lookup-table', r.name)
        .and(page.locator('[data-state="replicated"]'))
        .waitFor({ timeout: 30_000 });
    await expect(page.locator('#lookup-title').textContent()).resolves.toContain(
      `in ${c.regions.length} of ${c.regions.length} regions`,
    );
    // When it was last pulled in each region (issue 13's usage): no client has pulled it yet.
    for (const r of c.regions)
      await expect(
        row('#lookup-table', r.name).locator('td[data-label="Last pull"]').textContent(),
      ).resolves.toBe('never');
    // The feed lists the tag landing in each replica, and the charts have points.
    for (const r of c.replicas)
      await page
        .locator(`#feed li[data-region="${r.name}"]`, { hasText: 'tag team/web:v1' })
        .first()
        .waitFor({ timeout: 10_000 });
    // The history behind the charts: each replica recorded applied changes with their lag.
    const history = (await (
      await fetch(`${gw.urls[0]}/meridian/v1/replication/history`)
    ).json()) as {
      regions: { region: string; points: { applied: number; p99: number | null }[] }[];
    };
    expect(history.regions.map((r) => r.region).sort()).toEqual(
      c.replicas.map((r) => r.name).sort(),
    );
    for (const r of history.regions) {
      expect(r.points.length).toBeGreaterThan(300); // the last hour, in 10 s buckets
      // At least the manifest and the tag (blob jobs may still be finishing).
      expect(r.points.reduce((a, p) => a + p.applied, 0)).toBeGreaterThanOrEqual(2);
      expect(r.points.some((p) => p.p99 !== null && p.p99 >= 0)).toBe(true);
    }
    await page.locator('#lag-chart canvas').waitFor();
    await page.locator('#backlog-chart canvas').waitFor();
    await page.click('#range button[data-minutes="5"]');
    await page.waitForTimeout(2500);
    await expect(page.locator('#summary').textContent()).resolves.toMatch(/caught up|replicating/);
    await shot('dashboard-replicated.png');

    // Phone-sized screen: rows become cards, nothing overflows horizontally.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    // (A string: the test's TypeScript has no DOM types.)
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await shot('dashboard-phone.png');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Stop a replica region's node: its row turns unhealthy and the summary says so.
    const victim = c.replicas[c.replicas.length - 1]!;
    await c.stopNode(victim.name);
    await row('#regions', victim.name)
      .and(page.locator('[data-health="down"]'))
      .waitFor({ timeout: 20_000 });
    await expect(
      row('#regions', victim.name).locator('td[data-label="Health"]').textContent(),
    ).resolves.toBe('node down');
    await expect(page.locator('#summary').textContent()).resolves.toContain(
      `${victim.name} is down`,
    );
    for (const r of c.regions.filter((x) => x.name !== victim.name))
      await row('#regions', r.name).and(page.locator('[data-health="up"]')).waitFor();
    await shot('dashboard-region-down.png');
    expect(errors).toEqual([]);
  });

  it("shows a replica's backlog and its reads sent to the primary while workers are stopped", async () => {
    await c.stopWorkers();
    const replica = c.replicas[0]!;
    const img = image({ layers: 1, layerSize: 1024 });
    await new RegistryClient(c.primary.url).pushImage('team/late', 'v1', img.blobs, img.manifest);
    // Not replicated yet: the replica answers from the primary (a fallback).
    const pulled = await new RegistryClient(replica.url).get('/v2/team/late/manifests/v1', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(pulled.status).toBe(200);
    const cellText = (label: string) =>
      row('#regions', replica.name).locator(`td[data-label="${label}"]`).textContent();
    await waitFor(async () => Number(await cellText('Fallbacks (1 h)')) > 0, 'fallbacks shown');
    await waitFor(async () => Number(await cellText('Backlog')) > 0, 'backlog shown');
    await page.fill('#lookup-input', 'team/late:v1');
    await page.click('#lookup button[type="submit"]');
    await row('#lookup-table', replica.name)
      .and(page.locator('[data-state="pending"]'))
      .waitFor({ timeout: 10_000 });
    await shot('dashboard-backlog.png');
  });

  it('shows when each region was last garbage-collected and what it freed', async () => {
    const gcCell = (region: string) =>
      row('#regions', region).locator('td[data-label="GC"]').textContent();
    expect(await gcCell(c.primary.name)).toBe('not yet');
    const img = image({ layers: 1, layerSize: 8192 });
    const client = new RegistryClient(c.primary.url);
    await client.pushImage('team/gone', 'v1', img.blobs, img.manifest);
    expect((await client.delete(`/v2/team/gone/manifests/${img.manifest.digest}`)).status).toBe(
      202,
    );
    const run = await client.post('/meridian/v1/admin/gc', {
      body: JSON.stringify({ graceSeconds: 0 }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(run.status).toBe(200);
    expect(run.json<{ blobsDeleted: number }>().blobsDeleted).toBeGreaterThanOrEqual(2);
    await waitFor(
      async () => /just now|ago/.test((await gcCell(c.primary.name)) ?? ''),
      'GC shown',
    );
    const freed = await row('#regions', c.primary.name)
      .locator('td[data-label="Freed (last GC)"]')
      .textContent();
    expect(freed).toMatch(/KiB|B$/);
    expect(await gcCell(c.replicas[0]!.name)).toBe('not yet');
  });
});
