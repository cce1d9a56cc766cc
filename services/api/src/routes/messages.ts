// Messages for the back office: a shop's messages newest first (keyset pages), and handling the request one
// belongs to (SPEC §10, MessageHandled), answered once the projection shows it.
import { Type } from '@sinclair/typebox';
import { handleRequest } from '#eventlog';
import { BrokerError, compareStreamIds, MessageId, rest } from '#events';
import { delay } from '#runtime';
import type { ApiContext } from '../context';
import { DEFAULT_LIMIT, decodeCursor, pageOf } from '../cursor';
import { type MessageRow, messageOf, selectCheckpoint, selectMessage, selectMessages } from '../queries';
import { defineRoute, type Route, ShopPath } from '../route';

/** How often `handle` looks at the projection checkpoint while it waits. */
const PROJECTION_POLL_MS = 10;

const EXAMPLE_MESSAGE: rest.MessageView = {
  id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1',
  event_id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V',
  shop_id: 'shop-1',
  table_id: 12,
  type: 'add_dish',
  title: '桌id:12 add_dish',
  status: 0,
  data: { dish: 'noodles', qty: 2 },
  user_info: { name: 'Li' },
  from_client_id: 'waiter-1',
  to_client_id: 'pos-1',
  state: 'pending',
  attempts: 1,
  created_at: '2024-05-01T09:31:00.000Z',
  delivered_at: null,
  delivered_via: null,
  handled_at: null,
  handled_by: null,
};

export function messageRoutes(ctx: ApiContext): Route[] {
  const list = defineRoute({
    method: 'get',
    path: '/v1/shops/:shopId/messages',
    name: 'listMessages',
    summary: "The shop's messages (one per recipient), newest first; `state` defaults to pending.",
    params: ShopPath,
    query: rest.MessagesQuery,
    success: { status: 200, description: 'a page of messages', schema: rest.listOf(rest.Message) },
    errors: ['DATABASE_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1' },
      query: { state: 'pending', limit: 50 },
      response: { items: [EXAMPLE_MESSAGE], next_cursor: null },
    },
    async run({ params, query }) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      let after: { createdKey: string; id: string } | null = null;
      if (query.cursor !== undefined) {
        const [createdKey, id] = decodeCursor(query.cursor, 2) as [string, string];
        if (Number.isNaN(Date.parse(createdKey)))
          throw new BrokerError('INVALID_INPUT', 'cursor is not valid');
        after = { createdKey, id };
      }
      const rows = await selectMessages(ctx.pool, params.shopId, query.state ?? 'pending', limit, after);
      const page = pageOf(rows, limit, (row) => [row.created_key, row.id], messageOf);
      return { status: 200, body: page };
    },
  });

  const handle = defineRoute({
    method: 'post',
    path: '/v1/messages/:id/handle',
    name: 'handleMessage',
    summary:
      'Handles the request a message belongs to (SPEC §10): one MessageHandled for every copy of the notify, ' +
      'answered with the message once the projection shows it (or 503 PROJECTION_TIMEOUT: it is recorded and will ' +
      'be projected). The first handler wins: a request already handled by someone else answers 409 ' +
      'ALREADY_HANDLED with `data: {handled_by, handled_at, status}`; the back office repeating its own handle ' +
      'with the same status answers 200 and records nothing.',
    params: Type.Object({ id: MessageId }),
    body: rest.HandleMessageBody,
    success: { status: 200, description: 'the handled message', schema: rest.Message },
    errors: ['NOT_FOUND', 'ALREADY_HANDLED', 'LOG_UNAVAILABLE', 'DATABASE_UNAVAILABLE', 'PROJECTION_TIMEOUT'],
    example: {
      params: { id: EXAMPLE_MESSAGE.id },
      body: { status: 1 },
      response: {
        ...EXAMPLE_MESSAGE,
        status: 1,
        state: 'handled',
        handled_at: '2024-05-01T09:35:00.000Z',
        handled_by: { kind: 'api' },
      },
    },
    async run({ params, body }) {
      const found = await selectMessage(ctx.pool, params.id);
      if (found === null) throw new BrokerError('NOT_FOUND', `no message ${params.id}`);
      const outcome = await handleRequest(
        { redis: ctx.redis, keys: ctx.keys, pool: ctx.pool },
        {
          shopId: found.shop_id,
          messageId: params.id,
          status: body.status,
          by: { kind: 'api' },
          source: 'api',
          nowMs: ctx.nowMs(),
        },
      );
      if (outcome.kind === 'conflict') {
        const { by, at, status } = outcome.first;
        throw new BrokerError(
          'ALREADY_HANDLED',
          `already handled by ${by.kind === 'device' ? `device ${by.client_id}` : 'the back office'}`,
          { handled_by: by, handled_at: at, status },
        );
      }
      const handled =
        outcome.kind === 'handled'
          ? await whenProjected(ctx, found.shop_id, outcome.streamId, params.id)
          : await whenHandled(ctx, params.id);
      return { status: 200, body: messageOf(handled) };
    },
  });

  return [list, handle];
}

/** A repeated handle: the message as projected, once the first handle shows (it may still be on its way). */
async function whenHandled(ctx: ApiContext, messageId: string): Promise<MessageRow> {
  const deadline = performance.now() + ctx.config.api.handleWaitMs;
  for (;;) {
    const row = await selectMessage(ctx.pool, messageId);
    if (row !== null && row.state === 'handled') return row;
    if (performance.now() >= deadline) throw new BrokerError('PROJECTION_TIMEOUT');
    await delay(PROJECTION_POLL_MS);
  }
}

/**
 * Waits, at most API_HANDLE_WAIT_MS, until the projections have committed the shop's stream up to `streamId`
 * (the checkpoint moves in the rows' transaction), then reads the message as projected.
 */
async function whenProjected(
  ctx: ApiContext,
  shopId: string,
  streamId: string,
  messageId: string,
): Promise<MessageRow> {
  const shard = ctx.keys.shardOf(shopId);
  // A monotonic clock: this is a timeout, not event time, so it must not follow an injected or adjusted clock.
  const deadline = performance.now() + ctx.config.api.handleWaitMs;
  for (;;) {
    const checkpoint = await selectCheckpoint(ctx.pool, shard);
    if (checkpoint !== null && compareStreamIds(`${checkpoint.ms}-${checkpoint.seq}`, streamId) >= 0) {
      const row = await selectMessage(ctx.pool, messageId);
      if (row !== null) return row;
    }
    if (performance.now() >= deadline) throw new BrokerError('PROJECTION_TIMEOUT');
    await delay(PROJECTION_POLL_MS);
  }
}
