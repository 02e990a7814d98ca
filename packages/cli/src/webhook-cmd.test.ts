import { definitionBody, parseHeader } from './webhook-cmd';

describe('meridian webhook options', () => {
  it('parses --header NAME=VALUE and NAME: VALUE, values may hold = and :', () => {
    expect(parseHeader('Authorization=Bearer a=b')).toEqual(['Authorization', 'Bearer a=b']);
    expect(parseHeader('X-Key: v:1')).toEqual(['X-Key', 'v:1']);
    expect(() => parseHeader('novalue')).toThrow(/NAME=VALUE/);
  });

  it('sends only the options given', () => {
    expect(definitionBody({ header: [] })).toEqual({
      url: undefined,
      actions: undefined,
      scope: undefined,
      headers: undefined,
      status: undefined,
      location: undefined,
      format: undefined,
      regions: undefined,
      secret: undefined,
    });
    expect(
      JSON.parse(
        JSON.stringify(
          definitionBody({
            uri: 'https://h.example/',
            actions: ['push', 'delete'],
            header: ['A=1', 'B=2'],
            location: 'westeurope',
          }),
        ),
      ),
    ).toEqual({
      url: 'https://h.example/',
      actions: ['push', 'delete'],
      headers: { A: '1', B: '2' },
      location: 'westeurope',
    });
  });
});
