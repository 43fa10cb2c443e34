/**
 * The object stores' tail cache holds at most its limit, whatever is asked of
 * it: what the store relies on to keep memory per process bounded. (That the
 * stores use it, and stay byte-exact, is in the S3 and Azure store tests.)
 */
import t from 'tap'
import { TailCache } from '../lib/store/data/tail-cache.js'

t.test('claims count against the limit; the least recently used tail goes first', async (t) => {
  const cache = new TailCache(10)
  const a = cache.claim(4)!
  a.bytes.fill(1)
  a.keep('a')
  const b = cache.claim(4)!
  b.keep('b')
  t.equal(cache.get('a')?.[0], 1, 'a kept tail is its collected bytes')
  // 'a' was used last: 'b' goes to make room.
  const c = cache.claim(4)!
  t.ok(c, 'a claim that does not fit evicts')
  t.equal(cache.get('b'), undefined, 'the least recently used went')
  t.ok(cache.get('a'), 'the recently used one stayed')
  t.equal(cache.claim(11), undefined, 'larger than the limit: refused')
  // The claim in progress (4) cannot go: 7 more cannot be had, so nothing is evicted for it.
  t.equal(cache.claim(7), undefined, 'claims in progress are not evicted')
  t.ok(cache.get('a'), 'nothing went for a claim that was refused')
  c.release()
  t.ok(cache.claim(10), 'a released claim gives its room back')
})

t.test('a dropped or released tail frees its room; keep or release count once', async (t) => {
  const cache = new TailCache(8)
  const a = cache.claim(8)!
  a.keep('a')
  a.release()
  t.ok(cache.get('a'), 'release after keep changes nothing')
  cache.drop('a')
  cache.drop('a')
  t.equal(cache.get('a'), undefined)
  const b = cache.claim(8)!
  b.release()
  b.release()
  b.keep('b')
  t.equal(cache.get('b'), undefined, 'keep after release keeps nothing')
  t.ok(cache.claim(8), 'the whole limit is free again')
  t.equal(cache.claim(0), undefined, 'nothing to keep for an empty tail')
})
