// Services as child processes (`node bin/broker.mjs start <service>`), so crash tests can SIGKILL them.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Env } from '#runtime';
import { waitFor } from './wait';

const BIN = new URL('../../bin/broker.mjs', import.meta.url).pathname;

export interface SpawnedService {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnService(service: string, env: Env): SpawnedService {
  const child = spawn(process.execPath, [BIN, 'start', service], {
    env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    output += String(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    output: () => output,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until the service logs a line containing `text` (e.g. 'broker started'). */
export async function waitForLog(service: SpawnedService, text: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(() => service.output().includes(text), { timeoutMs, what: `"${text}" in the service's log` });
}
