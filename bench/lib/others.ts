// The other benchmark files in bench/ (each owned by its service's people, each a command of its own): run as
// they are, after ours, and their printed figures kept for the report. A failing one is reported, not fatal.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { track } from './children';

export interface OtherBench {
  file: string;
  exitCode: number | null;
  seconds: number;
  output: string;
}

/** Runs every `bench/*.bench.ts` not in `ours`, one at a time, each with a time limit. */
export async function runOtherBenches(ours: string[], timeoutMs: number): Promise<OtherBench[]> {
  const files = readdirSync('bench')
    .filter((f) => f.endsWith('.bench.ts') && !ours.includes(f))
    .sort();
  const results: OtherBench[] = [];
  for (const file of files) {
    const start = performance.now();
    const child = track(spawn(process.execPath, ['--import', 'tsx', `bench/${file}`], { stdio: 'pipe' }));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    const lines = output.trim().split('\n');
    results.push({
      file,
      exitCode,
      seconds: Math.round((performance.now() - start) / 1000),
      output: lines.slice(-15).join('\n'),
    });
    console.log(`${file} (exit ${exitCode}):\n${lines.slice(-15).join('\n')}`);
  }
  return results;
}
