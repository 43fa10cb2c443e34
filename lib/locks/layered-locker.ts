/**
 * The in-process lock first, then the shared one: requests of one instance
 * meet in memory (at no database cost, with the silent-writer takeover of
 * MemoryLocker), and only the one that wins there asks the database, which
 * settles it between instances. Released in the opposite order, so a request
 * waiting in memory finds the database lock free when it gets its turn.
 */
import type { Lock, LockRequest, Locker } from '../../types/index.js'
import { isValidId } from '../protocol/headers.js'

export class LayeredLocker implements Locker {
  constructor (private readonly local: Locker, private readonly shared: Locker) {}

  async tryAcquire (id: string, request?: LockRequest): Promise<Lock | null> {
    const local = await this.local.tryAcquire(id, request)
    if (local === null) return null
    // An id no upload can have (the route answers 404) needs no shared lock.
    if (!isValidId(id)) return local
    let shared: Lock | null
    try {
      shared = await this.shared.tryAcquire(id, request)
    } catch (err) {
      await local.release()
      throw err
    }
    if (shared === null) {
      await local.release()
      return null
    }
    let done = false
    return {
      release: async () => {
        if (done) return
        done = true
        try {
          await shared.release()
        } finally {
          await local.release()
        }
      },
      held: () => local.held() && shared.held()
    }
  }
}
