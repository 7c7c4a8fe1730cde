// Live views keep up with a busy job by applying events once per animation frame instead of once per event,
// and by keeping only the newest `cap` items in memory (older log lines are paged from the server on demand).
import { useCallback, useEffect, useRef, useState } from "react";

/** Append-only list bounded to its newest `cap` items; `dropped` counts what fell off the front. */
export class BoundedList<T> {
  items: T[] = [];
  dropped = 0;
  constructor(readonly cap: number) {}

  push(batch: readonly T[]): void {
    if (batch.length === 0) return;
    this.items = this.items.concat(batch);
    const over = this.items.length - this.cap;
    if (over > 0) {
      this.items = this.items.slice(over);
      this.dropped += over;
    }
  }
}

/** Collects pushes and hands them to `flush` at most once per frame (or per `schedule` tick in tests). */
export class FrameBatcher<T> {
  private pending: T[] = [];
  private scheduled = false;
  constructor(
    private readonly flush: (batch: T[]) => void,
    private readonly schedule: (run: () => void) => void = (run) => requestAnimationFrame(run),
  ) {}

  push(...items: T[]): void {
    this.pending.push(...items);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      const batch = this.pending;
      this.pending = [];
      if (batch.length) this.flush(batch);
    });
  }
}

/** A bounded list state fed through a FrameBatcher: `append` may be called thousands of times a second. */
export function useLiveList<T>(cap: number): { items: T[]; dropped: number; append: (...items: T[]) => void; reset: () => void } {
  const list = useRef(new BoundedList<T>(cap));
  const [, setVersion] = useState(0);
  const batcher = useRef<FrameBatcher<T> | null>(null);
  // made in the effect (not during render), so StrictMode's mount-unmount-mount keeps a live one
  useEffect(() => {
    batcher.current = new FrameBatcher<T>((batch) => {
      list.current.push(batch);
      setVersion((v) => v + 1);
    });
    return () => {
      batcher.current = null;
    };
  }, []);
  const append = useCallback((...items: T[]) => {
    if (batcher.current) batcher.current.push(...items);
    else list.current.push(items); // before the first effect: kept, shown on the next render
  }, []);
  const reset = useCallback(() => {
    list.current = new BoundedList<T>(cap);
    setVersion((v) => v + 1);
  }, [cap]);
  return { items: list.current.items, dropped: list.current.dropped, append, reset };
}
