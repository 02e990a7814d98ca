import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, SignJWT } from 'jose';
import pino from 'pino';
import { OciError } from '@meridian/oci';
import { openStore, UnavailableError, type ObjectStore } from '@meridian/storage';
import { AuthService, type AuthServiceOptions } from './auth-service';
import { TokenError } from './token-service';

const log = pino({ level: 'silent' });
const ctx = { address: '127.0.0.1', method: 'password' };

/** A store that can be made unreachable, like a region whose S3 endpoint is down. */
function switchable(store: ObjectStore): { store: ObjectStore; down: (v: boolean) => void } {
  let isDown = false;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (isDown) return Promise.reject(new UnavailableError('region down'));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, down: (v) => (isDown = v) };
}

describe('AuthService across regions', () => {
  let dirs: string[] = [];
  const services: AuthService[] = [];
  let primaryStore: ReturnType<typeof switchable>;
  let replicaStore: ObjectStore;

  const start = async (o: Partial<AuthServiceOptions> & { region: string }) => {
    const s = new AuthService({
      source: primaryStore.store,
      local: o.region === 'eastus' ? primaryStore.store : replicaStore,
      pollIntervalMs: 100,
      failureDelayMs: 0,
      log,
      ...o,
    });
    services.push(s);
    return { service: s, created: await s.start() };
  };

  beforeEach(async () => {
    dirs = [mkdtempSync(join(tmpdir(), 'auth-p-')), mkdtempSync(join(tmpdir(), 'auth-r-'))];
    primaryStore = switchable(await openStore(dirs[0]!));
    replicaStore = await openStore(dirs[1]!);
  });
  afterEach(async () => {
    for (const s of services.splice(0)) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('creates the owner once, logs in, refuses wrong passwords with one message', async () => {
    const { service, created } = await start({ region: 'eastus', bootstrapOwner: true });
    expect(created?.name).toBe('owner');
    const pw = created!.generatedPassword!;
    expect(pw.length).toBeGreaterThan(20);
    const owner = await service.login('owner', pw, ctx);
    expect(owner.kind).toBe('user');
    const wrong = await service.login('owner', 'nope', ctx).catch((e: unknown) => e);
    const unknown = await service.login('ghost', 'nope', ctx).catch((e: unknown) => e);
    expect((wrong as OciError).code).toBe('UNAUTHORIZED');
    expect((unknown as OciError).message).toBe((wrong as OciError).message);
    // A second start does not create it again.
    const again = await start({ region: 'eastus', bootstrapOwner: true });
    expect(again.created).toBeUndefined();
    const events = await service.audit.query({ action: 'login' });
    expect(events.map((e) => e.outcome).sort()).toEqual(['failure', 'failure', 'success']);
    expect(JSON.stringify(events)).not.toContain(pw);
  });

  it('verifies a token issued in another region, and keeps working with the primary down', async () => {
    const primary = await start({
      region: 'eastus',
      bootstrapOwner: true,
      ownerPassword: 'owner-secret-1',
    });
    const actor = { principal: { kind: 'user' as const, name: 'owner' }, address: '-' };
    await primary.service.admin.createScopeMap(actor, {
      name: 'team-a-rw',
      rules: [{ repository: 'team-a/*', actions: ['content/read', 'content/write'] }],
    });
    const { passwords } = await primary.service.admin.createToken(actor, {
      name: 'ci-team-a',
      scopeMap: 'team-a-rw',
    });
    const replica = await start({ region: 'westeurope' });
    // The replica knows the token (mirrored) and issues a token the primary accepts.
    const p = await replica.service.login('ci-team-a', passwords[1]!.password, ctx);
    const t = await replica.service.issueAccessToken(p, [
      'repository:team-a/app:pull,push,delete',
      'repository:team-b/app:pull',
    ]);
    expect(t.access).toEqual([
      { type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] },
    ]);
    const v = await primary.service.verifyAccessToken(t.token);
    expect(v.principal).toMatchObject({ kind: 'token', name: 'ci-team-a' });
    expect(v.keyRegion).toBe('westeurope');

    // Primary region down: a replica restarted now still authenticates from its own copy.
    primaryStore.down(true);
    const cold = await start({ region: 'westeurope' });
    expect(cold.service.credentials.sourceReachable).toBe(false);
    const p2 = await cold.service.login('owner', 'owner-secret-1', ctx);
    const t2 = await cold.service.issueAccessToken(p2, ['repository:x:pull']);
    expect((await cold.service.verifyAccessToken(t2.token)).access).toEqual([
      { type: 'repository', name: 'x', actions: ['pull'] },
    ]);
    // Changes need the primary.
    await expect(
      cold.service.admin.setTokenEnabled(actor, 'ci-team-a', false),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    primaryStore.down(false);
  });

  it('refuses expired, tampered, foreign, other-service and revoked tokens', async () => {
    const { service } = await start({
      region: 'eastus',
      bootstrapOwner: true,
      ownerPassword: 'owner-secret-1',
    });
    const owner = await service.login('owner', 'owner-secret-1', ctx);
    const good = (await service.issueAccessToken(owner, ['repository:a:pull'])).token;
    await expect(service.verifyAccessToken(good)).resolves.toBeTruthy();

    const [h, body, sig] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    claims.access = [{ type: 'repository', name: 'b', actions: ['push'] }];
    const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    await expect(service.verifyAccessToken(tampered)).rejects.toBeInstanceOf(TokenError);

    // Signed with a key nobody published, but claiming this node's key id.
    const rogue = await generateKeyPair('ES256');
    const forged = await new SignJWT({ kind: 'user', use: 'access', access: claims.access })
      .setProtectedHeader({ alg: 'ES256', kid: service.tokens.kid })
      .setIssuer('meridian')
      .setAudience('meridian')
      .setSubject('owner')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(rogue.privateKey);
    await expect(service.verifyAccessToken(forged)).rejects.toThrow(/signature/);

    const short = await start({ region: 'eastus', tokenTtlSeconds: -60 });
    const expired = (await short.service.issueAccessToken(owner, ['repository:a:pull'])).token;
    await expect(service.verifyAccessToken(expired)).rejects.toThrow(/exp/);

    const other = await start({ region: 'eastus', registryName: 'other-registry' });
    const foreign = (await other.service.issueAccessToken(owner, [])).token;
    await expect(service.verifyAccessToken(foreign)).rejects.toThrow(/"(iss|aud)" claim/);

    // A refresh token is not an access token.
    const refresh = await service.issueRefreshToken(owner);
    await expect(service.verifyAccessToken(refresh)).rejects.toThrow(/access token/);

    // A new password for the owner revokes tokens bound to the old one.
    const actor = { principal: owner, address: '-' };
    await service.admin.setIdentityPassword(actor, 'owner', { password: 'owner-secret-2' });
    await expect(service.verifyAccessToken(good)).rejects.toThrow(/revoked/);
    await expect(service.refresh(refresh, ctx)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('disabling a token stops it at another node within the poll interval', async () => {
    const primary = await start({
      region: 'eastus',
      bootstrapOwner: true,
      ownerPassword: 'owner-secret-1',
    });
    const replica = await start({ region: 'westeurope' });
    const actor = { principal: { kind: 'user' as const, name: 'owner' }, address: '-' };
    const { passwords } = await primary.service.admin.createToken(actor, {
      name: 'puller',
      scopeMap: '_repositories_pull',
    });
    await replica.service.credentials.refresh(true);
    const p = await replica.service.login('puller', passwords[0]!.password, ctx);
    const t = await replica.service.issueAccessToken(p, ['repository:a:pull,push']);
    expect(t.access).toEqual([{ type: 'repository', name: 'a', actions: ['pull'] }]);
    await primary.service.admin.setTokenEnabled(actor, 'puller', false);
    await new Promise((r) => setTimeout(r, 400));
    await expect(replica.service.verifyAccessToken(t.token)).rejects.toThrow(/disabled/);
    await expect(
      replica.service.login('puller', passwords[0]!.password, ctx),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('throttles a brute-force loop with TOOMANYREQUESTS, even for the right password', async () => {
    const { service } = await start({
      region: 'eastus',
      bootstrapOwner: true,
      ownerPassword: 'owner-secret-1',
      throttle: { maxFailuresPerIdentity: 5 },
    });
    const codes: string[] = [];
    for (let i = 0; i < 8; i++)
      codes.push(
        await service.login('owner', `guess-${i}`, ctx).then(
          () => 'ok',
          (e: OciError) => e.code,
        ),
      );
    expect(codes).toEqual([
      ...Array<string>(5).fill('UNAUTHORIZED'),
      ...Array<string>(3).fill('TOOMANYREQUESTS'),
    ]);
    await expect(service.login('owner', 'owner-secret-1', ctx)).rejects.toMatchObject({
      code: 'TOOMANYREQUESTS',
    });
    const throttled = await service.audit.query({ outcome: 'throttled' });
    expect(throttled.length).toBe(4);
  });
});
