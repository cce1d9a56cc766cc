// Progress of a long operator command on stderr (stdout is the command's result): a bar on a terminal, a plain line
// at every tenth of the way elsewhere (a log file, CI).
import cliProgress from 'cli-progress';

/** A progress bar on a terminal; elsewhere a plain line at every tenth of the way. */
export function progressOf(label: string, unit: string, total: number, isTerminal: boolean) {
  if (isTerminal) {
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
      update: (done: number) => {
        if (done > bar.getTotal()) bar.setTotal(done); // more than counted (events appended while rebuilding)
        bar.update(done);
      },
      stop: (done: number) => {
        bar.update(done);
        bar.stop();
      },
    };
  }
  let nextTenth = 1;
  let printed = -1;
  const line = (done: number) => {
    printed = done;
    process.stderr.write(`${label}: ${done}/${Math.max(total, done)} ${unit} (${percent(done, total)}%)\n`);
  };
  line(0);
  return {
    update: (done: number) => {
      if (percent(done, total) < nextTenth * 10) return;
      nextTenth = Math.floor(percent(done, total) / 10) + 1;
      line(done);
    },
    stop: (done: number) => {
      if (done !== printed) line(done);
    },
  };
}

function percent(done: number, total: number): number {
  return total === 0 ? 100 : Math.min(100, Math.floor((done * 100) / total));
}
