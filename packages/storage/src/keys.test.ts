import { InvalidKeyError } from './errors';
import { compareKeys, validateDirPrefix, validateKey, validatePrefix } from './keys';

describe('validateKey', () => {
  it.each(['a', 'blobs/sha256/ab/abcdef/data', 'A-Z_a.z=+-/0', '..a/a../.a', 'x'.repeat(1024)])(
    'accepts %s',
    (key) => {
      expect(validateKey(key)).toBe(key);
    },
  );

  it.each([
    ['', /empty key/],
    ['/a', /leading slash/],
    ['a/', /empty segment/],
    ['a//b', /empty segment/],
    ['.', /"\." segment/],
    ['..', /"\.\." segment/],
    ['../x', /"\.\." segment/],
    ['a/./b', /"\." segment/],
    ['a/..', /"\.\." segment/],
    ['a\\..\\b', /outside/],
    ['a b', /outside/],
    ['a\u0000b', /outside/],
    ['ä', /outside/],
    ['x'.repeat(1025), /longer than 1024 bytes/],
  ])('rejects %j', (key, why) => {
    expect(() => validateKey(key)).toThrow(InvalidKeyError);
    expect(() => validateKey(key)).toThrow(why);
  });
});

describe('validatePrefix', () => {
  it.each(['', 'a/', 'a/b', 'a/b/', 'repositories/lib', 'a/.x'])('accepts %j', (prefix) => {
    expect(validatePrefix(prefix)).toBe(prefix);
  });

  it.each(['/', '/a', 'a//', '../', 'a/./', 'a/..', 'a/.', 'a b', 'x'.repeat(1025)])(
    'rejects %j',
    (prefix) => {
      expect(() => validatePrefix(prefix)).toThrow(InvalidKeyError);
    },
  );

  it('requires a trailing slash for whole-directory prefixes', () => {
    expect(validateDirPrefix('a/b/')).toBe('a/b/');
    expect(() => validateDirPrefix('a/b')).toThrow(/must end with "\/"/);
    expect(() => validateDirPrefix('')).toThrow(InvalidKeyError);
  });
});

describe('compareKeys', () => {
  it('orders by bytes, as S3 does', () => {
    expect(['a0', 'a/b', 'a-b', 'B', 'a.b', '_'].sort(compareKeys)).toEqual([
      'B',
      '_',
      'a-b',
      'a.b',
      'a/b',
      'a0',
    ]);
  });
});
