// Messages for the back office: a shop's messages newest first (keyset pages), and handling one
// (MessageHandled), answered once the projection shows it.
import { Type } from '@sinclair/typebox';
import { BrokerError, compareStreamIds, createEvent, MessageId, rest } from '#events';
import { delay } from '#runtime';
import { type ApiContext, checkedEvent } from '../context';
import { DEFAULT_LIMIT, decodeCursor, pageOf } from '../cursor';
import { type MessageRow, messageOf, selectCheckpoint, selectMessage, selectMessages } from '../queries';
import { defineRoute, type Route, ShopPath } from '../route';

/** How often `handle` looks at the projection checkpoint while it waits. */
const PROJECTION_POLL_MS = 10;

const EXAMPLE_MESSAGE: rest.MessageView = {
  id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1',
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
      'Marks a message handled with a business status (MessageHandled); answers the message once the ' +
      'projection shows it, or 503 PROJECTION_TIMEOUT (the event is recorded and will be projected). ' +
      'Handling a handled message again records the new status (the latest handle wins).',
    params: Type.Object({ id: MessageId }),
    body: rest.HandleMessageBody,
    success: { status: 200, description: 'the handled message', schema: rest.Message },
    errors: ['NOT_FOUND', 'LOG_UNAVAILABLE', 'DATABASE_UNAVAILABLE', 'PROJECTION_TIMEOUT'],
    example: {
      params: { id: EXAMPLE_MESSAGE.id },
      body: { status: 1 },
      response: { ...EXAMPLE_MESSAGE, status: 1, state: 'handled', handled_at: '2024-05-01T09:35:00.000Z' },
    },
    async run({ params, body }) {
      const found = await selectMessage(ctx.pool, params.id);
      if (found === null) throw new BrokerError('NOT_FOUND', `no message ${params.id}`);
      const event = checkedEvent(
        createEvent({
          type: 'MessageHandled',
          shopId: found.shop_id,
          source: 'api',
          nowMs: ctx.nowMs(),
          data: { id: params.id, status: body.status },
        }),
      );
      const streamId = await ctx.eventLog.append(event);
      const handled = await whenProjected(ctx, found.shop_id, streamId, params.id);
      return { status: 200, body: messageOf(handled) };
    },
  });

  return [list, handle];
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
