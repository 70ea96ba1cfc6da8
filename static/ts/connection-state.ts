/**
 * The desk's side of reconnecting: reloads that happen once however many signals ask for them,
 * and the countdown and probe while the connection is down.
 */

/**
 * Run a reload at most once at a time: a request while one runs asks for one more after it,
 * however many requests came meanwhile.
 */
export class Coalescer {
  private running = false;
  private again = false;

  constructor(private readonly run: () => Promise<unknown>) {}

  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.run()
      .catch(() => undefined)
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  get busy(): boolean {
    return this.running;
  }
}

/**
 * Which lost-event signals a reload after a (re)connect already covers.
 *
 * The reload that follows `connection.established` is sent after the client resubscribed, so
 * its answer is at least as new as what the resubscription could not recover (`not_recovered`,
 * `epoch_changed`): one reload per connection, however many event types report it. A `gap` in
 * the live events later on needs a reload of its own.
 */
export class ResyncPolicy {
  private covered = false;

  /** The connection is (re-)established: one reload is due. */
  established(): boolean {
    this.covered = true;
    return true;
  }

  /** The connection is gone: the next one needs its own reload. */
  lost(): void {
    this.covered = false;
  }

  /** Whether a `subscription.recovery_failed` of `reason` needs a reload of its own. */
  needsReload(reason: string): boolean {
    return reason === "gap" || !this.covered;
  }
}

/** Whole seconds left until `deadline` (ms), never negative. */
export function secondsLeft(deadline: number, now: number): number {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/**
 * When the server's health probe may trigger a reconnect: while the page is visible and the
 * connection is waiting to be retried, at most once per `spacingMs`, so a server that answers
 * HTTP but refuses sockets is not hammered.
 */
export class ProbeGate {
  private last = -Infinity;

  constructor(private readonly spacingMs = 2000) {}

  mayReconnect(now: number, visible: boolean, waiting: boolean): boolean {
    if (!visible || !waiting || now - this.last < this.spacingMs) return false;
    this.last = now;
    return true;
  }
}
