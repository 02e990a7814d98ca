import { generatePassword, hashPassword, verifyPassword } from './passwords';

describe('passwords', () => {
  it('hashes with scrypt, salted, and verifies', async () => {
    const pw = generatePassword();
    const [a, b] = await Promise.all([hashPassword(pw, 12), hashPassword(pw, 12)]);
    expect(a).toMatch(/^scrypt\$12\$8\$1\$/);
    expect(a).not.toEqual(b);
    expect(a).not.toContain(pw);
    expect(await verifyPassword(pw, a)).toBe(true);
    expect(await verifyPassword(`${pw}x`, a)).toBe(false);
  });
  it('refuses malformed or absurdly expensive hashes without throwing', async () => {
    expect(await verifyPassword('x', 'plain')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$40$8$1$AAAA$AAAA')).toBe(false);
  });
});
