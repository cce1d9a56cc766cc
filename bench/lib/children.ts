// Every child process a run starts (broker services, load generators, Mosquitto), so an interrupted run can stop
// them all before it cleans up its keys and database.
import type { ChildProcess } from 'node:child_process';

const children = new Set<ChildProcess>();

export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** SIGKILLs every child still running and resolves once they are gone. */
export async function killAll(): Promise<void> {
  const exits = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(exits);
}
