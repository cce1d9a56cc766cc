// Loads the Lua scripts beside this file into a client. Each script's header lists its KEYS, ARGV and results;
// the key count is in the file name.
import { readFileSync } from 'node:fs';
import { packageFile, type RedisClient } from '#runtime';

export const SCRIPTS = [
  'notify-12',
  'login-6',
  'ack-4',
  'register-2',
  'revoke-3',
  'close-3',
  'push-2',
  'route-3',
  'handle-7',
  'ack-notices-3',
  'rotate-3',
] as const;
export type ScriptName = (typeof SCRIPTS)[number];
type ScriptReply = Array<string | number>;
type ScriptCall = (...keysThenArgs: Array<string | number | Buffer>) => Promise<ScriptReply>;

const sources = new Map(
  SCRIPTS.map((name) => [name, readFileSync(packageFile(`libs/eventlog/src/scripts/${name}.lua`), 'utf8')]),
);
const loaded = new WeakSet<RedisClient>();

function commandName(name: ScriptName): string {
  return `broker_${name.replace(/-\d+$/, '')}`;
}

/**
 * Defines every script on a client. Call it before the client sends anything (EventLog's and Inbox's constructors
 * do): with auto-pipelining, a script defined while a pipeline is pending is missing from that pipeline, and
 * ioredis then throws an uncaught TypeError ("results[i] is not iterable", redis/ioredis#1931), which ends the
 * process.
 */
export function defineScripts(redis: RedisClient): void {
  if (loaded.has(redis)) return;
  for (const script of SCRIPTS) {
    redis.defineCommand(commandName(script), {
      numberOfKeys: Number(script.slice(script.lastIndexOf('-') + 1)),
      lua: sources.get(script)!,
    });
  }
  loaded.add(redis);
}

/** Runs a script by name (EVALSHA, falling back to EVAL once per connection, as ioredis's defineCommand does). */
export function runScript(
  redis: RedisClient,
  name: ScriptName,
  keys: string[],
  args: Array<string | number | Buffer>,
) {
  defineScripts(redis);
  // defineCommand adds methods at run time; ioredis cannot type them.
  const call = (redis as unknown as Record<string, ScriptCall>)[commandName(name)]!;
  return call.call(redis, ...keys, ...args);
}
