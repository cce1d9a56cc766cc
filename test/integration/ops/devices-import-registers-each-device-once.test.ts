// `broker devices import` (SPEC §9): a CSV export of the original's ws_devices table registered through the real
// command, twice: the second run registers nothing new. Tokens go to a new file only; bad input is one line and
// exit code 2, with nothing registered.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventOf } from '#events';
import { DeviceTokens } from '#runtime';
import { createTestContext, readLog, registerDevice, type TestContext } from '#test-support';
import { runBroker } from './harness';

let ctx: TestContext;
let dir: string;
const file = (name: string) => join(dir, name);

// As a MySQL client exports it: a header with the table's other columns, quotes, CRLF, a byte-order mark.
const EXPORT =
  '\uFEFF"id","shop_id","client_id","type","create_time"\r\n' +
  '1,"1001","pos-1","主","2018-04-27 13:46:59"\r\n' +
  '2,"1001","pad-1","副","2018-04-27 13:47:10"\r\n' +
  '3,1002,"pos-1","主","2018-05-01 09:00:00"\r\n' +
  '4,1002,"pad-7","副","2018-05-01 09:00:01"\r\n' +
  '5,"1001","pad-1","副","2018-06-01 10:00:00"\r\n';

const registered = async () => (await readLog(ctx, 'DeviceRegistered')) as Array<EventOf<'DeviceRegistered'>>;

beforeAll(async () => {
  ctx = await createTestContext();
  dir = mkdtempSync(join(tmpdir(), 'devices-import-'));
  writeFileSync(file('ws_devices.csv'), EXPORT);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await ctx?.cleanup();
});

describe('when the export is imported twice', () => {
  it('registers each device once, marked legacy, and writes each new token to the file', async () => {
    const run = await runBroker(ctx, [
      'devices',
      'import',
      file('ws_devices.csv'),
      '--legacy',
      '--tokens',
      file('tokens-1.csv'),
    ]);
    expect(run.stdout).toBe(
      `devices import: 5 rows, 4 devices registered (legacy), 0 already registered; 4 tokens written to ${file('tokens-1.csv')}\n`,
    );
    expect(run.stderr).toContain('import: 4/4 devices (100%)');
    expect(run.code).toBe(0);

    const events = await registered();
    expect(events.map((e) => [e.shop_id, e.data.client_id, e.data.type, e.data.legacy, e.source])).toEqual(
      expect.arrayContaining([
        ['1001', 'pos-1', 'main', true, 'cli'],
        ['1001', 'pad-1', 'sub', true, 'cli'],
        ['1002', 'pos-1', 'main', true, 'cli'],
        ['1002', 'pad-7', 'sub', true, 'cli'],
      ]),
    );
    expect(events).toHaveLength(4);
    expect(JSON.parse((await ctx.redis.hget(ctx.keys.devices('1002'), 'pad-7'))!)).toMatchObject({
      type: 'sub',
      legacy: true,
    });

    const [header, ...lines] = readFileSync(file('tokens-1.csv'), 'utf8').trim().split('\n');
    expect(header).toBe('shop_id,client_id,type,token');
    expect(statSync(file('tokens-1.csv')).mode & 0o777).toBe(0o600);
    const tokens = new DeviceTokens(ctx.config.tokens.secret, ctx.config.tokens.ttlS);
    const claims = await Promise.all(
      lines.map(async (line) => {
        const [shop, client, type, token] = line.split(',');
        const verified = await tokens.verify(token!);
        expect(verified).toMatchObject({ shop_id: shop, client_id: client, type });
        return `${shop}/${client}`;
      }),
    );
    expect(claims.sort()).toEqual(['1001/pad-1', '1001/pos-1', '1002/pad-7', '1002/pos-1']);
  });

  it('registers nothing new the second time', async () => {
    const run = await runBroker(ctx, [
      'devices',
      'import',
      file('ws_devices.csv'),
      '--legacy',
      '--tokens',
      file('tokens-2.csv'),
    ]);
    expect(run.stdout).toBe(
      `devices import: 5 rows, 0 devices registered (legacy), 4 already registered; 0 tokens written to ${file('tokens-2.csv')}\n`,
    );
    expect(run.code).toBe(0);
    expect(await registered()).toHaveLength(4);
    expect(readFileSync(file('tokens-2.csv'), 'utf8')).toBe('shop_id,client_id,type,token\n');
  });

  it('names a device registered otherwise than the file says, and leaves it as it is', async () => {
    await registerDevice(ctx, '1003', 'pos-9', 'sub');
    writeFileSync(file('one.csv'), '1003,pos-9,主\n1003,pos-10,main\n');
    const run = await runBroker(ctx, ['devices', 'import', file('one.csv')]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /2 rows, 1 device registered, 1 already registered, 1 of them otherwise; no tokens/,
    );
    expect(run.stderr).toContain('pos-9 of shop 1003 is registered (sub), not as the file says (main)');
    expect(JSON.parse((await ctx.redis.hget(ctx.keys.devices('1003'), 'pos-9'))!).type).toBe('sub');
  });
});

describe('when the input is unusable', () => {
  it('refuses a bad row in one line, exit 2, and registers nothing', async () => {
    writeFileSync(file('bad.csv'), 'shop_id,client_id,type\n2001,pos-1,主\n2001,pos 2,主\n2001,pad-1,boss\n');
    const before = (await registered()).length;
    const run = await runBroker(ctx, ['devices', 'import', file('bad.csv')]);
    expect(run.stderr).toBe(
      `broker devices import: ${file('bad.csv')} line 3: client_id "pos 2" is not 1-64 of A-Z a-z 0-9 _ . : - ` +
        '(and 1 more bad rows); nothing registered\n',
    );
    expect(run.stdout).toBe('');
    expect(run.code).toBe(2);
    expect(await registered()).toHaveLength(before);
  });

  it('refuses a tokens file that exists, which may hold the tokens of an earlier run', async () => {
    const run = await runBroker(ctx, [
      'devices',
      'import',
      file('ws_devices.csv'),
      '--tokens',
      file('tokens-1.csv'),
    ]);
    expect(run.stderr).toMatch(/^broker devices import: --tokens .*tokens-1\.csv exists already/);
    expect(run.code).toBe(2);
    expect(readFileSync(file('tokens-1.csv'), 'utf8').split('\n')).toHaveLength(6);
  });

  it('refuses a file it cannot read', async () => {
    const run = await runBroker(ctx, ['devices', 'import', file('missing.csv')]);
    expect(run.stderr).toBe(`broker devices import: cannot read ${file('missing.csv')} (ENOENT)\n`);
    expect(run.code).toBe(2);
  });
});
