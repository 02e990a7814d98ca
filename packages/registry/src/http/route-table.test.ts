import { OciError } from '@meridian/oci';
import { RouteTable, type AppRoute } from './route-table';

const noop = () => undefined;
const READ = {
  kind: 'repository' as const,
  name: ':repository',
  actions: ['metadata_read'],
  challenge: 'metadata_read',
};
const routes: AppRoute[] = [
  { method: 'GET', path: '/acr/v1/_catalog', need: { kind: 'catalog' }, handle: noop },
  { method: 'GET', path: '/acr/v1/:repository+', need: READ, handle: noop },
  { method: 'GET', path: '/acr/v1/:repository+/_tags', need: READ, handle: noop },
  { method: 'GET', path: '/acr/v1/:repository+/_tags/:tag', need: READ, handle: noop },
  { method: 'PATCH', path: '/acr/v1/:repository+/_tags/:tag', need: READ, handle: noop },
];
const table = new RouteTable(routes);

function fails(method: string, path: string): OciError {
  try {
    table.match(method, path);
  } catch (err) {
    if (err instanceof OciError) return err;
    throw err;
  }
  throw new Error(`${method} ${path} matched`);
}

describe('RouteTable :repository+', () => {
  test('a name of one or more segments; the need names the matched repository', () => {
    const m = table.match('GET', '/acr/v1/team-a/sub/app/_tags/v1');
    expect(m.route.path).toBe('/acr/v1/:repository+/_tags/:tag');
    expect(m.params).toEqual({ repository: 'team-a/sub/app', tag: 'v1' });
    expect(m.need).toEqual({ ...READ, name: 'team-a/sub/app' });
    expect(table.match('GET', '/acr/v1/app').need).toEqual({ ...READ, name: 'app' });
    expect(table.match('GET', '/acr/v1/_catalog').route.path).toBe('/acr/v1/_catalog');
  });

  test('an encoded slash is the same name, decoded once', () => {
    const m = table.match('GET', '/acr/v1/team-a%2Fapp/_tags');
    expect(m.params.repository).toBe('team-a/app');
    expect(m.need).toEqual({ ...READ, name: 'team-a/app' });
  });

  test.each([
    '/acr/v1/team-a/../b/_tags',
    '/acr/v1/team-a/%2e%2e/b/_tags',
    '/acr/v1/Team-A/_tags',
    '/acr/v1/a//b/_tags',
    '/acr/v1/a/_tags/',
    '/acr/v1/a/_TAGS',
    '/acr/v1/a%252Fb/_tags',
  ])('%s is NAME_INVALID, never another repository', (path) => {
    const err = fails('GET', path);
    expect({ code: err.code, status: err.status }).toEqual({ code: 'NAME_INVALID', status: 400 });
  });

  test('literal segments compare exactly; a method the path does not take is 405', () => {
    expect(fails('GET', '/ACR/v1/a/_tags').status).toBe(404);
    expect(fails('GET', '/acr/v1').status).toBe(404);
    const e = fails('DELETE', '/acr/v1/a/_tags/v1');
    expect(e.status).toBe(405);
    expect(e.detail).toEqual({ allow: ['GET', 'HEAD', 'PATCH'] });
    expect(fails('GET', '/acr/v1/a%zz/_tags').code).toBe('NAME_INVALID');
  });
});
