// How many times each undelivered message has been pushed so far, from the inbox's live counts in Redis. The
// projection's `attempts` is written when a message is acked or gives up, so for a pending message it says
// nothing yet; an operator wants to see "pushed 3 times, still no ack".
import { Type } from '@sinclair/typebox';
import { BrokerError, compile, MessageId } from '#events';
import { type ApiContext, readRedis } from '../context';
import { defineRoute, type Route, ShopPath } from '../route';

/** One page of the console's message list at most. */
const MAX_IDS = 100;
const isMessageId = compile(MessageId).is;

const PushesQuery = Type.Object({ ids: Type.String({ minLength: 1, maxLength: MAX_IDS * 200 }) });

export function pushesRoute(ctx: ApiContext): Route {
  return defineRoute({
    method: 'get',
    path: '/shops/:shopId/pushes',
    name: 'consolePushes',
    summary: 'Pushes so far of undelivered messages (`ids`, comma-separated); delivered ones are absent.',
    params: ShopPath,
    query: PushesQuery,
    success: { status: 200, description: 'message id → pushes' },
    errors: ['LOG_UNAVAILABLE'],
    example: { params: { shopId: 'shop-1' }, query: { ids: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1' } },
    async run({ params, query }) {
      const ids = query.ids.split(',');
      if (ids.length > MAX_IDS || !ids.every(isMessageId)) {
        throw new BrokerError('INVALID_INPUT', `ids: up to ${MAX_IDS} message ids, comma-separated`);
      }
      const counts = await readRedis(ctx.redis.hmget(ctx.keys.attempts(params.shopId), ...ids));
      const pushes: Record<string, number> = {};
      ids.forEach((id, i) => {
        const count = counts[i];
        if (count !== null && count !== undefined) pushes[id] = Number(count);
      });
      return { status: 200, body: pushes };
    },
  });
}
