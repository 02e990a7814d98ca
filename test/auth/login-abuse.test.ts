/**
 * Password guessing against a real node (issue 10 §3): someone else's failures never lock the
 * owner out; concurrent guesses cannot outrun the throttle (an attempt is counted before the
 * hash); the KDF work is bounded (beyond its queue: 429 with Retry-After) while requests with
 * already verified credentials go on; and the counts are shared through Redis. Client addresses
 * are given as X-Forwarded-For, which the node believes from loopback (as from the gateway).
 */
import {
  AuthedClient,
  basic,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';
import { image } from '../helpers/images';
import { startRedis, type TestRedis } from '../helpers/redis';

interface Answer {
  status: number;
  retryAfter: string | null;
  code?: string;
}

/** `GET /v2/` with Basic credentials, as a client at `address`. */
async function v2(url: string, user: string, password: string, address: string): Promise<Answer> {
  const res = await fetch(`${url}/v2/`, {
    headers: { Authorization: basic(user, password), 'X-Forwarded-For': address },
    // Bounded, so a login that waits on something that never answers fails here, not by timeout.
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { errors?: { code: string }[] };
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    code: body.errors?.[0]?.code,
  };
}

/** `GET /oauth2/token` with Basic credentials, as a client at `address`. */
async function token(url: string, user: string, password: string, address: string) {
  const res = await fetch(`${url}/oauth2/token?service=meridian`, {
    headers: { Authorization: basic(user, password), 'X-Forwarded-For': address },
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { token?: string };
  return { status: res.status, token: body.token };
}

const count = (answers: Answer[], status: number) =>
  answers.filter((a) => a.status === status).length;

describe('auth: login abuse', () => {
  describe('one node', () => {
    let node: AuthNode;
    beforeAll(async () => {
      // No delay on failures here: these loops are sequential (the delay is on below).
      node = await startAuthNode({ failureDelayMs: 0 });
    });
    afterAll(async () => {
      await node?.close();
    });

    it("never refuses the owner's right password from a clean address because someone else failed", async () => {
      const attacker = '203.0.113.66';
      for (let i = 0; i < 60; i++) await v2(node.url, 'owner', `guess-${i}`, attacker);
      expect(await v2(node.url, 'owner', OWNER_PASSWORD, '198.51.100.10')).toMatchObject({
        status: 200,
      });
      expect((await token(node.url, 'owner', OWNER_PASSWORD, '198.51.100.11')).status).toBe(200);
      // The attacker's own address is refused, even with the right password.
      const theirs = await v2(node.url, 'owner', OWNER_PASSWORD, attacker);
      expect(theirs).toMatchObject({ status: 429, code: 'TOOMANYREQUESTS' });
      expect(Number(theirs.retryAfter)).toBeGreaterThan(0);
    });

    it('counts concurrent wrong passwords before hashing: beyond the limit they get 429', async () => {
      const address = '203.0.113.77';
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) => v2(node.url, 'owner', `wrong-${i}`, address)),
      );
      // 10 failures per identity and address (the default); the rest are refused unchecked.
      expect(count(answers, 401)).toBe(10);
      expect(count(answers, 429)).toBe(50);
      const refused = answers.find((a) => a.status === 429)!;
      expect(refused.code).toBe('TOOMANYREQUESTS');
      expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    });

    it('counts an address trying many usernames', async () => {
      const address = '203.0.113.88';
      const answers: Answer[] = [];
      for (let i = 0; i < 35; i++) answers.push(await v2(node.url, `nobody-${i}`, 'x', address));
      expect(count(answers, 401)).toBe(30);
      expect(count(answers, 429)).toBe(5);
      expect((await v2(node.url, 'owner', OWNER_PASSWORD, '198.51.100.12')).status).toBe(200);
    });

    it('shares one check among identical attempts in flight: a right password is never refused', async () => {
      const owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
      const password = 'ci-password-never-verified-yet';
      const created = await owner.post('/meridian/v1/admin/identities', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ kind: 'service', name: 'ci', password, roles: [] }),
      });
      expect(created.status).toBe(201);
      // More at once than the per-(identity, address) limit, none verified before.
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => token(node.url, 'ci', password, '198.51.100.20')),
      );
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    });
  });

  describe('bounded KDF work', () => {
    let node: AuthNode;
    const img = image({ layers: 1 });
    beforeAll(async () => {
      node = await startAuthNode({ kdf: { concurrency: 1, maxQueue: 4 } });
      const owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
      await owner.pushImage('app/base', 'v1', img.blobs, img.manifest);
    });
    afterAll(async () => {
      await node?.close();
    });

    it('refuses bogus logins beyond the KDF queue with 429 while verified credentials are served', async () => {
      const owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
      expect((await owner.get('/v2/')).status).toBe(200); // verified once, remembered
      // 100 at once, each from its own address and for an unknown username: no per-address or
      // per-identity limit applies, only the KDF bound.
      const bogus = Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          v2(node.url, `nobody-${i}`, 'guess', `10.9.${Math.floor(i / 250)}.${i % 250}`),
        ),
      );
      const honest: number[] = [];
      for (let i = 0; i < 10; i++) {
        for (const b of img.blobs)
          honest.push((await owner.get(`/v2/app/base/blobs/${b.digest}`)).status);
      }
      const answers = await bogus;
      expect(honest).toEqual(honest.map(() => 200));
      expect(count(answers, 401) + count(answers, 429)).toBe(100);
      expect(count(answers, 429)).toBeGreaterThan(50);
      const refused = answers.find((a) => a.status === 429)!;
      expect(refused.code).toBe('TOOMANYREQUESTS');
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    });
  });

  describe('two nodes of a region sharing Redis', () => {
    let redis: TestRedis;
    let a: AuthNode;
    let b: AuthNode;
    beforeAll(async () => {
      redis = await startRedis();
      const throttle = { redisUrl: redis.url, redisPrefix: `t${Date.now()}:auth:login:local` };
      const kdf = { concurrency: 1, maxQueue: 16 }; // the process's pool: undo the block above
      a = await startAuthNode({ throttle, kdf });
      b = await startAuthNode({ throttle, kdf });
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await redis?.stop();
    });

    it('counts failures at either node together', async () => {
      const address = '203.0.113.99';
      const first = await Promise.all([
        ...[0, 1, 2, 3, 4].map((i) => v2(a.url, 'owner', `x${i}`, address)),
        ...[0, 1, 2, 3, 4].map((i) => v2(b.url, 'owner', `y${i}`, address)),
      ]);
      expect(first.map((r) => r.status)).toEqual(first.map(() => 401));
      expect(await v2(a.url, 'owner', 'z', address)).toMatchObject({
        status: 429,
        code: 'TOOMANYREQUESTS',
      });
      expect((await v2(b.url, 'owner', 'z', address)).status).toBe(429);
      expect((await v2(b.url, 'owner', OWNER_PASSWORD, '198.51.100.30')).status).toBe(200);
    });

    it('answers logins while Redis is frozen (SIGSTOP), counting in each node meanwhile', async () => {
      // A frozen Redis keeps its connections open and answers nothing: a login must not wait
      // on it (a push's token request, a pull's Basic credentials), it falls back to the node.
      redis.process.kill('SIGSTOP');
      try {
        expect((await v2(a.url, 'owner', OWNER_PASSWORD, '198.51.100.41')).status).toBe(200);
        expect((await v2(b.url, 'owner', 'wrong', '198.51.100.42')).status).toBe(401);
        const t = await token(b.url, 'owner', OWNER_PASSWORD, '198.51.100.43');
        expect(t.status).toBe(200);
        expect(t.token).toBeTruthy();
      } finally {
        redis.process.kill('SIGCONT');
      }
    });
  });
});
