/**
 * `admin-user enable|disable` answer (and so `meridian admin-user enable|disable` print) the
 * state after the change, not the one before it.
 */
import {
  AuthedClient,
  basic,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';

describe('admin-user enable/disable answer the new state', () => {
  let node: AuthNode;
  let owner: AuthedClient;

  beforeAll(async () => {
    node = await startAuthNode();
    owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
  });
  afterAll(async () => {
    await node?.close();
  });

  const post = async (path: string) => {
    const res = await owner.post(`/meridian/v1/admin/admin-user/${path}`);
    expect(res.status).toBe(200);
    return res.json<{ enabled: boolean; newPasswords?: unknown[]; passwords: unknown[] }>();
  };

  test('enable, disable, enable again', async () => {
    const first = await post('enable');
    expect(first.enabled).toBe(true);
    expect(first.newPasswords).toHaveLength(2);
    expect(first.passwords).toHaveLength(2);
    expect((await post('disable')).enabled).toBe(false);
    const again = await post('enable');
    expect(again.enabled).toBe(true);
    expect(again.newPasswords).toEqual([]);
    const shown = await owner.get('/meridian/v1/admin/admin-user');
    expect(shown.json<{ enabled: boolean }>().enabled).toBe(true);
  });
});
