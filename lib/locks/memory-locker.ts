/**
 * One writer per upload inside one process. A second writer is told at once
 * that the upload is busy (the route answers 423), unless it asks the holder to
 * give the lock up and the holder agrees (a writer whose client went silent);
 * then it waits, briefly, for the release. The holder releases as soon as its
 * request ends, including when the client's socket closes mid-body.
 */
import type { Lock, LockRequest, Locker } from '../../types/index.js'

interface Holder {
  onReleaseRequested?: () => boolean
  released: Promise<void>
}

export class MemoryLocker implements Locker {
  private readonly held = new Map<string, Holder>()

  async tryAcquire (id: string, request: LockRequest = {}): Promise<Lock | null> {
    const holder = this.held.get(id)
    if (holder !== undefined) {
      if (request.wait === undefined || request.wait <= 0 || holder.onReleaseRequested?.() !== true) return null
      if (!await settlesWithin(holder.released, request.wait) || this.held.has(id)) return null
    }
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    this.held.set(id, { onReleaseRequested: request.onReleaseRequested, released })
    let done = false
    return {
      release: async () => {
        if (done) return
        done = true
        this.held.delete(id)
        release()
      },
      // Nothing outside this process can take it: held until released.
      held: () => !done
    }
  }
}

async function settlesWithin (promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([promise.then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}
