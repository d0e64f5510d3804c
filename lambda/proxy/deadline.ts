/**
 * A deadline as an AbortSignal that always fires. `AbortSignal.timeout()` is held only weakly by its
 * timer: created inline inside `AbortSignal.any([...])`, nothing keeps it alive, a garbage collection
 * drops it and it never fires (the per-attempt provider timeout did exactly that). A plain timer is
 * held by the event loop until it fires or is cleared, and it holds the controller, so the signal
 * lives as long as the deadline. Clear it when the work is done.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly milliseconds: number) {
    this.timer = setTimeout(
      () =>
        this.controller.abort(
          new DOMException(`deadline of ${milliseconds} ms passed`, 'TimeoutError'),
        ),
      milliseconds,
    );
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get passed(): boolean {
    return this.controller.signal.aborted;
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
