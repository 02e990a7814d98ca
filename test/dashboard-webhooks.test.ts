/**
 * The dashboard's webhook table (issue 14) in a real browser: a webhook, its latest delivery and
 * its recent counts, read from the admin API.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startCluster, type TestCluster } from './helpers/cluster';
import { RegistryClient } from './helpers/http';
import { image } from './helpers/images';
import { waitFor } from './helpers/wait';
import { WebhookReceiver } from './helpers/webhook-receiver';

const CHROMIUM = '/usr/bin/chromium';

describe('dashboard: webhooks', () => {
  let c: TestCluster;
  let receiver: WebhookReceiver;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (Debian package)`);
    c = await startCluster({
      regions: ['eastus'],
      webhooks: { allowPrivateTargets: ['loopback'] },
    });
    receiver = await new WebhookReceiver().start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await c?.close();
  });

  it('lists each webhook with its latest delivery', async () => {
    const res = await fetch(`${c.primary.url}/meridian/v1/admin/webhooks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'deploy', url: receiver.url, actions: ['push'] }),
    });
    expect(res.status).toBe(201);
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('dash/app', 'v1', img.blobs, img.manifest);
    await waitFor(async () => receiver.of('push').length === 1, 'the push');

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${c.primary.url}/dashboard/`);
    const table = page.locator('#webhooks-section');
    await table.waitFor({ state: 'visible' });
    const row = page.locator('#webhooks tbody tr');
    await row.filter({ hasText: 'deploy' }).filter({ hasText: 'delivered' }).waitFor();
    const text = await row.first().innerText();
    expect(text).toContain('push dash/app');
    expect(text).toContain('enabled');
    expect(text).toMatch(/1 \/ 0 \/ 0/);
    expect(errors).toEqual([]);
  });
});
