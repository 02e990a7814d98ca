import { parseS3Url } from './s3-url';

describe('parseS3Url', () => {
  it('parses bucket, prefix and endpoint parameters', () => {
    expect(
      parseS3Url(
        's3://registry-eastus/regions/eastus?endpoint=http://127.0.0.1:7480&region=us-east-1',
      ),
    ).toEqual({
      bucket: 'registry-eastus',
      prefix: 'regions/eastus',
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
    });
  });

  it('accepts a bare bucket, and a trailing slash', () => {
    expect(parseS3Url('s3://my.bucket-1')).toEqual({ bucket: 'my.bucket-1' });
    expect(parseS3Url('s3://bkt/')).toEqual({ bucket: 'bkt' });
    expect(parseS3Url('s3://bkt/a/b/')).toEqual({ bucket: 'bkt', prefix: 'a/b' });
  });

  it('decodes an encoded endpoint and parses the tuning parameters', () => {
    const url =
      's3://bkt?endpoint=' +
      encodeURIComponent('https://s3.example.test:9000/') +
      '&forcePathStyle=false&partSize=8388608&queueSize=4' +
      '&requestChecksumCalculation=WHEN_SUPPORTED&responseChecksumValidation=WHEN_REQUIRED';
    expect(parseS3Url(url)).toEqual({
      bucket: 'bkt',
      endpoint: 'https://s3.example.test:9000',
      forcePathStyle: false,
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });

  it.each([
    ['http://bkt/x', /scheme must be s3:/],
    ['s3://', /bad bucket name/],
    ['s3://Upper', /bad bucket name/],
    ['s3://a', /bad bucket name/],
    ['s3://bkt/../etc', /bad prefix/],
    ['s3://bkt/a//b', /bad prefix/],
    ['s3://bkt?endpoint=ftp://x', /endpoint must be an http\(s\) URL/],
    ['s3://bkt?endpoint=nonsense', /endpoint must be an http\(s\) URL/],
    ['s3://bkt?partSize=1.5', /partSize must be a positive integer/],
    ['s3://bkt?partSize=-1', /partSize must be a positive integer/],
    ['s3://bkt?forcePathStyle=yes', /forcePathStyle must be true or false/],
    ['s3://bkt?requestChecksumCalculation=ALWAYS', /WHEN_REQUIRED or WHEN_SUPPORTED/],
    ['s3://bkt?regoin=us-east-1', /unknown parameter "regoin"/],
    ['s3://bkt:9000', /no port/],
    ['not a url', /not a URL/],
  ])('rejects %s', (url, why) => {
    expect(() => parseS3Url(url)).toThrow(why);
  });

  it('refuses credentials in the URL without echoing them', () => {
    for (const url of [
      's3://AKIAEXAMPLE:topsecret@bkt/x',
      's3://bkt?endpoint=' + encodeURIComponent('http://AKIAEXAMPLE:topsecret@127.0.0.1:7480'),
    ]) {
      let message = '';
      try {
        parseS3Url(url);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/credentials do not belong/);
      expect(message).not.toContain('topsecret');
      expect(message).not.toContain('AKIAEXAMPLE');
    }
  });
});
