/**
 * One writer per upload inside one process. `tryAcquire` never waits: a second
 * writer is told at once that the upload is busy (the route answers 423), and
 * the holder releases as soon as its request ends, including when the client's
 * socket closes mid-body.
 */
import type { Lock, Locker } from '../../types/index.js'

export class MemoryLocker implements Locker {
  private readonly held = new Set<string>()

  async tryAcquire (id: string): Promise<Lock | null> {
    if (this.held.has(id)) return null
    this.held.add(id)
    let released = false
    return {
      release: async () => {
        if (released) return
        released = true
        this.held.delete(id)
      }
    }
  }

  isHeld (id: string): boolean {
    return this.held.has(id)
  }
}
