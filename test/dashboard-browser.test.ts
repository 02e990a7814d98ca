/**
 * The registry browser (issue 16) in Debian's chromium, through the gateway of a three-region
 * cluster with auth on: sign in, find an image pushed here, see its platforms, layers, config
 * labels, a signature and an SBOM referring to it and its replication in every region; delete a
 * tag and see it gone; a phone-width page without horizontal overflow. Screenshots go to docs/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runGateway, type RunningGateway } from '../packages/cli/src/gateway-cmd';
import { AuthedClient, basic } from './helpers/auth-node';
import { startCluster, type TestCluster } from './helpers/cluster';
import {
  artifact,
  blobOf,
  imageIndex,
  imageManifest,
  MediaTypes,
  randomBlob,
  type ImageBlob,
  type Manifest,
} from './helpers/images';
import { noteSecret } from './helpers/log-scan';
import { waitFor } from './helpers/wait';

const CHROMIUM = '/usr/bin/chromium';
const DOCS = resolve(__dirname, '../docs/screenshots');
const OWNER = 'browser-owner-password-1';
const VIEWER = 'browser-viewer-password-1';
/** An attacker-controlled label value: it must show as text, never become an element. */
const HOSTILE = '<img src=x onerror="document.title=\'pwned\'">';

describe('registry browser in a real browser', () => {
  let c: TestCluster;
  let gw: RunningGateway;
  let browser: Browser;
  let page: Page;
  let owner: AuthedClient;
  let index: Manifest;
  let amd64: Manifest;
  const errors: string[] = [];
  /** The API answers the page got (path, status, serving region): a failed wait names them. */
  const answers: string[] = [];

  /** Waits for `locator`; on a timeout the error says what the page showed and what it was told. */
  async function seen(locator: ReturnType<Page['locator']>, timeout?: number): Promise<void> {
    try {
      await locator.waitFor({ timeout });
    } catch (e) {
      const shown = await page
        .locator('#browser')
        .innerText()
        .catch(() => '(no #browser)');
      throw new Error(
        `${(e as Error).message}\npage showed:\n${shown}\nlast answers:\n${answers.slice(-12).join('\n')}`,
      );
    }
  }

  const shot = (name: string) => page.screenshot({ path: join(DOCS, name), fullPage: true });
  const overflow = () =>
    page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );

  /** An image for one platform whose config carries labels. */
  function platformImage(arch: string): { manifest: Manifest; blobs: ImageBlob[] } {
    const config = blobOf(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        created: '2026-12-01T10:00:00Z',
        config: {
          Labels: {
            'org.opencontainers.image.source': 'https://example.com/team/web',
            'com.example.note': HOSTILE,
          },
        },
        rootfs: { type: 'layers', diff_ids: [] },
      }),
      MediaTypes.ociConfig,
    );
    const layers = [
      randomBlob(48 * 1024, MediaTypes.ociLayerGzip),
      randomBlob(3000, MediaTypes.ociLayerGzip),
    ];
    return { manifest: imageManifest({ config, layers }), blobs: [config, ...layers] };
  }

  async function push(repo: string, ref: string, m: { manifest: Manifest; blobs: ImageBlob[] }) {
    for (const b of m.blobs) expect((await owner.uploadBlob(repo, b)).status).toBe(201);
    const res = await owner.put(`/v2/${repo}/manifests/${ref}`, {
      body: m.manifest.bytes,
      headers: { 'Content-Type': m.manifest.mediaType },
    });
    expect(res.status).toBe(201);
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (Debian package)`);
    mkdirSync(DOCS, { recursive: true });
    noteSecret(VIEWER);
    c = await startCluster({ auth: {}, ownerPassword: OWNER, softDelete: { enabled: true } });
    await c.startWorkers();
    gw = await runGateway({
      ...c.config,
      gateway: { ...c.config.gateway, listen: ['127.0.0.1:0'], healthIntervalMs: 500 },
    });
    owner = new AuthedClient(c.primary.url, basic('owner', OWNER));

    // A two-platform index, tagged v1 and v2, with a signature and an SBOM referring to it.
    const a = platformImage('amd64');
    const b = platformImage('arm64');
    amd64 = a.manifest;
    await push('team/web', a.manifest.digest, a);
    await push('team/web', b.manifest.digest, b);
    index = imageIndex({ manifests: [a.manifest, b.manifest] });
    await push('team/web', 'v1', { manifest: index, blobs: [] });
    await new Promise((r) => setTimeout(r, 5)); // v2 is the newer tag, by the clock too
    const v2 = await owner.put('/v2/team/web/manifests/v2', {
      body: index.bytes,
      headers: { 'Content-Type': index.mediaType },
    });
    expect(v2.status).toBe(201);
    const subject = { mediaType: index.mediaType, digest: index.digest, size: index.size };
    const sig = artifact({
      subject,
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    });
    await push('team/web', sig.manifest.digest, sig);
    const sbom = artifact({ subject, artifactType: 'application/spdx+json' });
    await push('team/web', sbom.manifest.digest, sbom);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/dashboard/')) return;
      answers.push(`${r.status()} ${u.pathname}${u.search} (${r.headers()['x-meridian-region']})`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await c?.close();
  });

  it('says which region served the page through the gateway', async () => {
    const res = await fetch(`${gw.urls[0]}/dashboard/`);
    expect(res.status).toBe(200);
    expect(c.regions.map((r) => r.name)).toContain(res.headers.get('x-meridian-region'));
    // The page itself holds no data: it is public, every API behind it is not.
    expect((await fetch(`${gw.urls[0]}/meridian/v1/replication/regions`)).status).toBe(401);
  });

  it('asks to sign in instead of waiting forever, and refuses a wrong password', async () => {
    await page.goto(`${gw.urls[0]}/dashboard/`);
    await page.locator('#signin-form').waitFor({ state: 'visible' });
    await expect(page.locator('#summary').textContent()).resolves.toBe('sign in required');
    expect(await page.locator('#replication').isHidden()).toBe(true);
    await page.fill('#signin-user', 'owner');
    await page.fill('#signin-password', 'not-the-password');
    await page.click('#signin-form button[type="submit"]');
    await page.locator('#signin-error', { hasText: 'wrong username or password' }).waitFor();
    await shot('signin.png');
    await page.fill('#signin-password', OWNER);
    await page.click('#signin-form button[type="submit"]');
    // The replication dashboard, with every region.
    for (const r of c.regions)
      await page.locator(`#regions tr[data-region="${r.name}"][data-health="up"]`).waitFor();
    await expect(page.locator('#who').textContent()).resolves.toBe('signed in as owner');
    // The password is not kept anywhere the page can read back.
    const stored = await page.evaluate<string>('JSON.stringify(sessionStorage)');
    expect(stored).not.toContain(OWNER);
  });

  it('browses to the image: platforms, layers, labels, referrers and every region', async () => {
    await page.click('#nav-repositories');
    const repoRow = page.locator('#repositories tr[data-repository="team/web"]');
    // A click right after typing in the search box (before its 200 ms pause ends) opens the
    // repository, and the search does not pull the page back to the list afterwards.
    await seen(repoRow);
    await page.fill('#repo-search', 'team/');
    await repoRow.locator('a').click();
    await seen(page.locator('#tags tr[data-tag="v1"]'));
    await page.waitForTimeout(400);
    expect(await page.evaluate<string>('location.hash')).toBe('#/repository/team%2Fweb');
    expect(await page.locator('#tags tr[data-tag="v1"]').count()).toBe(1);

    await page.click('#nav-repositories');
    await page.fill('#repo-search', 'team/w');
    await waitFor(
      async () => (await page.evaluate<string>('location.hash')) === '#/repositories?q=team%2Fw',
      'the search applied',
    );
    await seen(repoRow.locator('td[data-label="Tags"]', { hasText: '2' }));
    // Nobody pulled it (the browser reads /acr/v1, which counts no pull).
    await repoRow.locator('td[data-label="Last pull"]', { hasText: 'never' }).waitFor();
    await expect(repoRow.locator('td[data-label="Size"]').textContent()).resolves.toMatch(/KiB$/);
    await shot('browser-repositories.png');
    await repoRow.locator('a').click();

    // The repository: both tags, their platforms, and a replicated dot per region.
    const v1 = page.locator('#tags tr[data-tag="v1"]');
    await seen(v1);
    await expect(v1.locator('td[data-label="Platforms"]').textContent()).resolves.toBe(
      'linux/amd64, linux/arm64',
    );
    for (const r of c.regions)
      await v1
        .locator(`.dot[data-region="${r.name}"][data-state="replicated"]`)
        .waitFor({ timeout: 30_000 });
    await expect(page.locator('[data-pull]').first().textContent()).resolves.toMatch(
      new RegExp(`^docker pull ${gw.urls[0]!.replace('http://', '')}/team/web:v[12]$`),
    );
    await shot('browser-repository.png');
    // Newest first (v2 was pushed after v1), then oldest first.
    const order = () =>
      page.evaluate<string[]>(
        `Array.from(document.querySelectorAll('#tags tbody tr')).map((r) => r.dataset.tag)`,
      );
    expect(await order()).toEqual(['v2', 'v1']);
    await page.click('#tag-order');
    await page.locator('#tag-order', { hasText: 'Oldest first' }).waitFor();
    await page.locator('#tags tr[data-tag="v1"]').waitFor();
    expect(await order()).toEqual(['v1', 'v2']);
    await page.click('#tag-order');
    await page.locator('#tag-order', { hasText: 'Newest first' }).waitFor();

    // The index: its platforms, its referrers and where it is replicated.
    await v1.locator('td[data-label="Tag"] a').click();
    await page.locator('#platforms tr[data-platform="linux/amd64"]').waitFor();
    await page.locator('#platforms tr[data-platform="linux/arm64"]').waitFor();
    await page.locator('#referrers li[data-referrer="signature"]').waitFor();
    await page.locator('#referrers li[data-referrer="SBOM"]').waitFor();
    for (const r of c.regions)
      await page
        .locator(`#manifest-replication tr[data-region="${r.name}"][data-state="replicated"]`)
        .waitFor({ timeout: 30_000 });
    await expect(page.locator('#overview').textContent()).resolves.toContain(index.digest);
    await shot('browser-manifest-index.png');

    // One platform: its layers with their sizes, and the config's labels, as text.
    await page.locator('#platforms tr[data-platform="linux/amd64"] a').click();
    await page.locator('#layers tbody tr').nth(1).waitFor();
    expect(await page.locator('#layers tbody tr').count()).toBe(2);
    await expect(page.locator('#layers').textContent()).resolves.toContain('48.0 KiB');
    await page.locator('#labels dd', { hasText: 'https://example.com/team/web' }).waitFor();
    await expect(page.locator('#labels dd', { hasText: 'onerror' }).textContent()).resolves.toBe(
      HOSTILE,
    );
    expect(await page.locator('#labels img').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');
    await expect(page.locator('#overview').textContent()).resolves.toContain(amd64.digest);
    await shot('browser-manifest-image.png');
    // Back to the replication dashboard: the feed lists the tag landing in each replica.
    await page.click('#nav-replication');
    for (const r of c.replicas)
      await page
        .locator(`#feed li[data-region="${r.name}"]`, { hasText: 'tag team/web:v1' })
        .first()
        .waitFor();
    // p99 is a measured lag, not a histogram interpolation.
    for (const r of c.replicas)
      await page
        .locator(
          `#regions tr[data-region="${r.name}"] td[data-label="p99 (1 m)"] [data-quantiles="exact"]`,
        )
        .waitFor();
    expect(errors).toEqual([]);
  });

  it('locks and unlocks a tag from the page, through /acr/v1', async () => {
    await page.goto(`${gw.urls[0]}/dashboard/#/repository/team%2Fweb`);
    const v1 = page.locator('#tags tr[data-tag="v1"]');
    await v1.getByRole('button', { name: 'Lock', exact: true }).click();
    await v1.locator('[data-lock="locked"]').waitFor();
    const tag = async () =>
      (
        await owner.get('/acr/v1/team/web/_tags/v1', { headers: { Accept: 'application/json' } })
      ).json<{ tag: { changeableAttributes: { writeEnabled: boolean; deleteEnabled: boolean } } }>()
        .tag.changeableAttributes;
    expect(await tag()).toMatchObject({ writeEnabled: false, deleteEnabled: false });
    await v1.getByRole('button', { name: 'Unlock', exact: true }).click();
    await v1.getByRole('button', { name: 'Lock', exact: true }).waitFor();
    expect(await v1.locator('[data-lock="locked"]').count()).toBe(0);
    expect(await tag()).toMatchObject({ writeEnabled: true, deleteEnabled: true });
  });

  it('deletes a tag: gone from the page and from the registry', async () => {
    await page.goto(`${gw.urls[0]}/dashboard/#/repository/team%2Fweb`);
    const v2 = page.locator('#tags tr[data-tag="v2"]');
    await v2.waitFor();
    page.once('dialog', (d) => void d.accept());
    await v2.locator('button', { hasText: 'Delete' }).click();
    await v2.waitFor({ state: 'detached' });
    await page.locator('#tags tr[data-tag="v1"]').waitFor();
    const gone = await owner.get('/v2/team/web/manifests/v2', {
      headers: { Accept: index.mediaType },
    });
    expect(gone.status).toBe(404);
    // The manifest stays, under v1.
    expect(
      (await owner.get('/v2/team/web/manifests/v1', { headers: { Accept: index.mediaType } }))
        .status,
    ).toBe(200);
    expect(errors).toEqual([]);
  });

  it('deletes a manifest into the recycle bin and restores it', async () => {
    const a = platformImage('amd64');
    const b = platformImage('arm64');
    await push('team/api', 'v1', a);
    await push('team/api', 'v2', b);
    await page.goto(`${gw.urls[0]}/dashboard/#/manifest/team%2Fapi:v1`);
    page.once('dialog', (d) => void d.accept());
    await page.locator('button', { hasText: 'Delete manifest' }).click();
    // Back on the repository: v1 is gone, its manifest waits in the recycle bin.
    const binned = page.locator(`#recycle-bin tr[data-deleted="${a.manifest.digest}"]`);
    await binned.waitFor();
    expect(await page.locator('#tags tr[data-tag="v1"]').count()).toBe(0);
    const pull = () =>
      owner.get('/v2/team/api/manifests/v1', { headers: { Accept: a.manifest.mediaType } });
    expect((await pull()).status).toBe(404);
    await binned.locator('button', { hasText: 'Restore' }).click();
    await page.locator('#tags tr[data-tag="v1"]').waitFor();
    expect((await pull()).status).toBe(200);
    expect(errors).toEqual([]);
  });

  it('offers no action to an identity that may only pull', async () => {
    const created = await owner.post('/meridian/v1/admin/identities', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        kind: 'user',
        name: 'viewer',
        password: VIEWER,
        roles: [{ role: 'AcrPull', scope: '*' }],
      }),
    });
    expect(created.status).toBe(201);
    // Every region mirrors the new identity (auth.pollIntervalMs).
    await waitFor(
      async () =>
        (
          await fetch(`${gw.urls[0]}/oauth2/token`, {
            headers: { Authorization: basic('viewer', VIEWER) },
          })
        ).status === 200,
      'viewer known through the gateway',
    );
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const viewer = await context.newPage();
    try {
      await viewer.goto(`${gw.urls[0]}/dashboard/#/repository/team%2Fweb`);
      await viewer.fill('#signin-user', 'viewer');
      await viewer.fill('#signin-password', VIEWER);
      await viewer.click('#signin-form button[type="submit"]');
      await viewer.locator('#tags tr[data-tag="v1"] .dot').first().waitFor();
      expect(await viewer.locator('#tags button', { hasText: /Delete|Lock/ }).count()).toBe(0);
      await viewer.goto(`${gw.urls[0]}/dashboard/#/manifest/team%2Fweb:v1`);
      await viewer.locator('#platforms tr').first().waitFor();
      expect(await viewer.locator('#browser button', { hasText: /Delete|Lock/ }).count()).toBe(0);
      // The owner, on the same page, has them.
      await page.goto(`${gw.urls[0]}/dashboard/#/manifest/team%2Fweb:v1`);
      await page.locator('button', { hasText: 'Delete manifest' }).waitFor();
    } finally {
      await context.close();
    }
  });

  it('fits a phone screen without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [hash, name] of [
      ['#/repository/team%2Fweb', 'browser-phone-repository.png'],
      [`#/manifest/team%2Fweb@${index.digest}`, 'browser-phone-manifest.png'],
      ['#/', 'dashboard-phone-feed.png'],
    ] as const) {
      await page.goto('about:blank'); // a fresh load of each view
      await page.goto(`${gw.urls[0]}/dashboard/${hash}`);
      await page
        .locator(hash === '#/' ? '#feed li' : '#browser h2')
        .first()
        .waitFor();
      await page.waitForTimeout(300); // late cells (replication dots, sizes)
      expect(await overflow()).toBeLessThanOrEqual(0);
      await shot(name);
    }
    // The feed keeps each change's region on a phone.
    const region = page.locator('#feed li .region').first();
    expect(await region.isVisible()).toBe(true);
    expect(c.replicas.map((r) => r.name)).toContain(await region.textContent());
    expect(errors).toEqual([]);
  });
});
