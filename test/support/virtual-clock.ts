/** A scheduler whose time moves only when a test says so, one step at a time. */
import { VirtualAction, VirtualTimeScheduler } from 'rxjs';

/**
 * rxjs's VirtualTimeScheduler, advanced in steps: `advance(ms)` runs every action due within
 * the next `ms` (in order), then sets the clock to the end of the step.
 */
export class VirtualClock extends VirtualTimeScheduler {
  constructor() {
    super(VirtualAction, 0);
  }

  /** Runs what is due in the next `ms` milliseconds, in order, and moves the clock to its end. */
  advance(ms: number): void {
    const end = this.frame + ms;
    this.maxFrames = end;
    this.flush();
    this.frame = end;
  }

  /** Actions still scheduled (timers not cancelled). */
  get pending(): number {
    return this.actions.length;
  }
}
