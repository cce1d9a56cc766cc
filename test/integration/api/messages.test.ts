import { describe, expect, it } from 'vitest';
import { EventLog } from '#eventlog';
import { compile, newEventId, rest } from '#events';
import { start as startPersister } from '#persister';
import { type Api, brokerInProcess, shopEvents } from '#test-support';

const isMessagePage = compile(rest.listOf(rest.Message));
const isMessage = compile(rest.Message);

/** Reads every page of a listing; asserts each page is well formed. */
async function readAllPages(api: Api, path: string, limit: number): Promise<rest.MessageView[][]> {
  const pages: rest.MessageView[][] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const answer = await api.request('GET', `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${query}`);
    expect(answer.status).toBe(200);
    expect(isMessagePage.is(answer.body)).toBe(true);
    pages.push(answer.body.items as rest.MessageView[]);
    cursor = answer.body.next_cursor as string | null;
  } while (cursor !== null);
  return pages;
}

const newestFirst = (a: rest.MessageView, b: rest.MessageView) =>
  b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id);

describe('when the back office reads and handles messages', () => {
  const broker = brokerInProcess({ api: true, persister: true });

  async function notify(shopId: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const answer = await broker.api.request('POST', `/v1/shops/${shopId}/notify`, {
        body: { from_client_id: 'waiter-1', table_id: i, type: 'add_dish', status: 0, data: { n: i } },
      });
      expect(answer.status).toBe(202);
      ids.push(answer.body.event_id as string);
    }
    await broker.persister.whenCaughtUp();
    return ids;
  }

  async function openShop(shopId: string): Promise<void> {
    for (const [clientId, type] of [
      ['pos-1', 'main'],
      ['pos-2', 'main'],
      ['waiter-1', 'sub'],
    ]) {
      const answer = await broker.api.request('POST', `/v1/shops/${shopId}/devices`, {
        body: { client_id: clientId, type },
      });
      expect(answer.status).toBe(201);
    }
  }

  it('lists pending messages, one per main device, newest first', async () => {
    await openShop('shop-1');
    const [first, second] = await notify('shop-1', 2);
    const answer = await broker.api.request('GET', '/v1/shops/shop-1/messages');
    expect(answer.status).toBe(200);
    expect(isMessagePage.is(answer.body)).toBe(true);
    expect((answer.body.items as rest.MessageView[]).map((m) => m.id)).toEqual([
      `${second}.pos-2`,
      `${second}.pos-1`,
      `${first}.pos-2`,
      `${first}.pos-1`,
    ]);
    expect(answer.body.items).toContainEqual({
      id: `${first}.pos-1`,
      event_id: first,
      shop_id: 'shop-1',
      table_id: 0,
      type: 'add_dish',
      title: '桌id:0 add_dish',
      status: 0,
      data: { n: 0 },
      user_info: {},
      from_client_id: 'waiter-1',
      to_client_id: 'pos-1',
      state: 'pending',
      attempts: 0,
      created_at: expect.any(String),
      delivered_at: null,
      delivered_via: null,
      handled_at: null,
      handled_by: null,
    });
    expect(answer.body.next_cursor).toBeNull();
  });

  it('pages past the first page without losing or repeating a message', async () => {
    await openShop('shop-2');
    await notify('shop-2', 7);
    const pages = await readAllPages(broker.api, '/v1/shops/shop-2/messages', 5);
    expect(pages.map((page) => page.length)).toEqual([5, 5, 4]);
    const all = pages.flat();
    expect(new Set(all.map((m) => m.id)).size).toBe(14);
    expect(all).toEqual([...all].sort(newestFirst));
  });

  it('answers 50 messages by default and at most 500', async () => {
    await openShop('shop-3');
    await notify('shop-3', 26);
    const first = await broker.api.request('GET', '/v1/shops/shop-3/messages');
    expect(first.body.items).toHaveLength(50);
    const second = await broker.api.request(
      'GET',
      `/v1/shops/shop-3/messages?cursor=${first.body.next_cursor}`,
    );
    expect(second.body.items).toHaveLength(2);
    expect(second.body.next_cursor).toBeNull();
    expect((await broker.api.request('GET', '/v1/shops/shop-3/messages?limit=500')).body.items).toHaveLength(
      52,
    );
  });

  it('handles the request a message belongs to: every copy, once, and answers it once projected', async () => {
    await openShop('shop-4');
    const [eventId] = await notify('shop-4', 2);
    const id = `${eventId}.pos-1`;
    const other = `${eventId}.pos-2`;
    const answer = await broker.api.request('POST', `/v1/messages/${id}/handle`, { body: { status: 7 } });
    expect(answer.status).toBe(200);
    expect(isMessage.is(answer.body)).toBe(true);
    expect(answer.body).toMatchObject({
      id,
      event_id: eventId,
      state: 'handled',
      status: 7,
      handled_at: expect.any(String),
      handled_by: { kind: 'api' },
    });

    // SPEC §10: the other cashier's copy is the same request, handled with it.
    const handled = await broker.api.request('GET', '/v1/shops/shop-4/messages?state=handled');
    const items = handled.body.items as rest.MessageView[];
    expect(items.map((m) => m.id).sort()).toEqual([id, other]);
    for (const m of items) {
      expect(m).toMatchObject({ status: 7, handled_by: { kind: 'api' }, handled_at: answer.body.handled_at });
    }
    const pending = await broker.api.request('GET', '/v1/shops/shop-4/messages');
    expect((pending.body.items as rest.MessageView[]).map((m) => m.id)).not.toContain(id);
    expect((await broker.api.request('GET', '/v1/shops/shop-4/messages?state=all')).body.items).toHaveLength(
      4,
    );

    // The same handle again is a safe retry: 200, nothing recorded. Another status is someone else's word: 409.
    const handledEvents = async () =>
      (await shopEvents(broker.ctx, 'shop-4')).filter((e) => e.type === 'MessageHandled').length;
    const again = await broker.api.request('POST', `/v1/messages/${other}/handle`, { body: { status: 7 } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: other, state: 'handled', status: 7 });
    const changed = await broker.api.request('POST', `/v1/messages/${id}/handle`, { body: { status: 8 } });
    expect(changed.status).toBe(409);
    expect(changed.body.error).toMatchObject({
      code: 'ALREADY_HANDLED',
      data: { handled_by: { kind: 'api' }, handled_at: answer.body.handled_at, status: 7 },
    });
    expect(await handledEvents()).toBe(1);
  });

  it('lists delivered messages apart, and handles a delivered one', async () => {
    await openShop('shop-5');
    const [eventId] = await notify('shop-5', 1);
    const id = `${eventId}.pos-2`;
    // The edge's ack, through the event log as the edge records it.
    await new EventLog(broker.ctx.redis, broker.ctx.keys).ack(
      'shop-5',
      'pos-2',
      'edge:test',
      [id],
      newEventId(),
      Date.now(),
    );
    await broker.persister.whenCaughtUp();
    const delivered = await broker.api.request('GET', '/v1/shops/shop-5/messages?state=delivered');
    expect(delivered.body.items).toEqual([expect.objectContaining({ id, state: 'delivered' })]);

    const answer = await broker.api.request('POST', `/v1/messages/${id}/handle`, { body: { status: 1 } });
    expect(answer.body).toMatchObject({ state: 'handled', delivered_at: expect.any(String) });
  });

  it('answers the handling of an unknown message with 404', async () => {
    const answer = await broker.api.request('POST', `/v1/messages/${newEventId()}.pos-1/handle`, {
      body: { status: 1 },
    });
    expect(answer.status).toBe(404);
    expect(answer.body.error?.code).toBe('NOT_FOUND');
  });

  it('refuses a handle without an integer status', async () => {
    const answer = await broker.api.request('POST', `/v1/messages/${newEventId()}.pos-1/handle`, {
      body: { status: 'done' },
    });
    expect(answer.status).toBe(400);
  });
});

describe('when the projection falls behind a handle', () => {
  const broker = brokerInProcess({ api: true, persister: true }, { API_HANDLE_WAIT_MS: '300' });

  it('answers 503 PROJECTION_TIMEOUT, and the handle is still projected later', async () => {
    for (const [clientId, type] of [
      ['pos-1', 'main'],
      ['waiter-1', 'sub'],
    ]) {
      await broker.api.request('POST', '/v1/shops/shop-1/devices', { body: { client_id: clientId, type } });
    }
    const notify = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', table_id: 1, type: 'checkout' },
    });
    await broker.persister.whenCaughtUp();
    await broker.persister.stop();

    const id = `${notify.body.event_id}.pos-1`;
    const answer = await broker.api.request('POST', `/v1/messages/${id}/handle`, { body: { status: 3 } });
    expect(answer.status).toBe(503);
    expect(answer.body.error?.code).toBe('PROJECTION_TIMEOUT');

    broker.persister = await startPersister(broker.ctx.config, { log: broker.ctx.log });
    await broker.persister.whenCaughtUp();
    const handled = await broker.api.request('GET', '/v1/shops/shop-1/messages?state=handled');
    expect(handled.body.items).toEqual([expect.objectContaining({ id, status: 3 })]);
  });
});
