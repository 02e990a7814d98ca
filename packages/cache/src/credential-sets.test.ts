import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore, type ObjectStore } from '@meridian/storage';
import { CREDENTIAL_SETS_ROOT, CredentialSets, parseCredentialKey } from './credential-sets';

describe('CredentialSets', () => {
  let dir: string;
  let store: ObjectStore;
  const key = randomBytes(32);
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'credential-sets-'));
    store = await openStore(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the username and password only encrypted, and never shows them', async () => {
    const sets = new CredentialSets(store, key);
    const made = await sets.create({
      name: 'hub',
      loginServer: 'docker.io',
      username: 'octo-user',
      password: 's3cret-token-value',
    });
    expect(made).toEqual({
      name: 'hub',
      loginServer: 'docker.io',
      createdAt: expect.any(String) as unknown,
      updatedAt: made.createdAt,
    });
    const raw = (await store.getBytes(`${CREDENTIAL_SETS_ROOT}hub`)).toString('utf8');
    expect(raw).not.toContain('octo-user');
    expect(raw).not.toContain('s3cret-token-value');
    expect(JSON.stringify(await sets.list())).not.toContain('octo-user');
    expect(await sets.credentials('hub')).toEqual({
      username: 'octo-user',
      password: 's3cret-token-value',
    });
    await sets.update('hub', { username: 'other', password: 'p2' });
    expect(await sets.credentials('hub')).toEqual({ username: 'other', password: 'p2' });
  });

  it('another key, or a sealed value moved to another name, is an error naming the set', async () => {
    await new CredentialSets(store, key).create({ name: 'a', username: 'u', password: 'p' });
    await expect(new CredentialSets(store, randomBytes(32)).credentials('a')).rejects.toThrow(
      'credential set "a" cannot be decrypted',
    );
    const rec = JSON.parse((await store.getBytes(`${CREDENTIAL_SETS_ROOT}a`)).toString()) as {
      name: string;
    };
    await store.put(`${CREDENTIAL_SETS_ROOT}b`, Buffer.from(JSON.stringify({ ...rec, name: 'b' })));
    await expect(new CredentialSets(store, key).credentials('b')).rejects.toThrow(
      'credential set "b" cannot be decrypted',
    );
  });

  it('refuses bad names, a duplicate, half a login, and an unknown set', async () => {
    const sets = new CredentialSets(store, key);
    await expect(sets.create({ name: '../x', username: 'u', password: 'p' })).rejects.toThrow(
      '"name"',
    );
    await expect(sets.create({ name: 'x', username: 'u' })).rejects.toThrow('"username"');
    await sets.create({ name: 'x', username: 'u', password: 'p' });
    await expect(sets.create({ name: 'x', username: 'u', password: 'p' })).rejects.toThrow(
      'exists',
    );
    await expect(sets.show('nope')).rejects.toThrow('no credential set "nope"');
    await sets.delete('x');
    await expect(sets.show('x')).rejects.toThrow('no credential set "x"');
  });

  it('the key must be 32 bytes of base64', () => {
    expect(parseCredentialKey(key.toString('base64'))).toEqual(key);
    expect(() => parseCredentialKey('short')).toThrow('32 bytes');
  });
});
