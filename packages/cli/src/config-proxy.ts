import { isIP } from 'node:net';

/** An address, a CIDR range (`10.0.0.0/8`, `fd00::/8`) or one of proxy-addr's range names. */
export function isProxySpec(v: string): boolean {
  if (v === 'loopback' || v === 'linklocal' || v === 'uniquelocal') return true;
  const [addr, bits, extra] = v.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
}
