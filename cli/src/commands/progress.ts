// How the operator commands show progress on stderr (stdout is their result): a bar on a terminal, and for the
// commands that want it, a plain line at every tenth of the way elsewhere (a log file, CI).
import cliProgress from 'cli-progress';

export interface Progress {
  /** `done` so far, out of the total given at the start (a total that grows is followed). */
  update(done: number): void;
  stop(done: number): void;
}

/** A bar: `<label> [████░░] 40% | 4/10 <unit> | 3s elapsed, eta 4s`. */
export function progressBar(label: string, unit: string, total: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration}s elapsed, eta {eta}s`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    update: (done) => {
      if (done > bar.getTotal()) bar.setTotal(done); // work added while running (events appended meanwhile)
      bar.update(done);
    },
    stop: (done) => {
      bar.update(done);
      bar.stop();
    },
  };
}

/** A line at the start, at every tenth of the way and at the end: `<label>: 4/10 <unit> (40%)`. */
export function progressLines(label: string, unit: string, total: number): Progress {
  let nextTenth = 1;
  let printed = -1;
  const line = (done: number) => {
    printed = done;
    process.stderr.write(`${label}: ${done}/${Math.max(total, done)} ${unit} (${percent(done, total)}%)\n`);
  };
  line(0);
  return {
    update: (done) => {
      if (percent(done, total) < nextTenth * 10) return;
      nextTenth = Math.floor(percent(done, total) / 10) + 1;
      line(done);
    },
    stop: (done) => {
      if (done !== printed) line(done);
    },
  };
}

/** For a command that shows progress only on a terminal. */
export const NO_PROGRESS: Progress = { update: () => undefined, stop: () => undefined };

function percent(done: number, total: number): number {
  return total === 0 ? 100 : Math.min(100, Math.floor((done * 100) / total));
}

/** A bar on a terminal, plain lines elsewhere (a log file, CI). */
export function progressOf(label: string, unit: string, total: number, isTerminal: boolean): Progress {
  return isTerminal ? progressBar(label, unit, total) : progressLines(label, unit, total);
}
