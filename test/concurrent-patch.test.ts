/**
 * Many PATCHes at once. On one upload at one offset exactly one may win (204);
 * the rest are told 409 (offset moved) or 423 (being written), and the stored
 * bytes are the winner's body, never a mix. On distinct uploads, all succeed.
 */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { bytes, create, patch, type Response } from './helpers/http.js'
import { assertStored, head, idOf, stored } from './helpers/tus.js'

const WRITERS = 50
const CHUNK = 64 * 1024

/** The distinct fill byte of writer `i` in round `round` (never 0, never repeated within a round). */
const fill = (round: number, i: number): number => 1 + round * WRITERS + i

t.test(`${WRITERS} concurrent PATCHes at the same offset: one wins, the others get 409 or 423, no interleaving`, async (t) => {
  const { endpoint, storage } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': String(2 * CHUNK) })
  const expected: Buffer[] = []

  for (const [round, offset] of [[0, 0], [1, CHUNK]] as const) {
    const bodies = Array.from({ length: WRITERS }, (_, i) => Buffer.alloc(CHUNK, fill(round, i)))
    const replies: Response[] = await Promise.all(bodies.map(async (body) => patch(url, offset, body)))

    const winners = replies.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 204)
    const others = replies.filter((r) => r.status !== 204)
    t.equal(winners.length, 1, `round ${round} (offset ${offset}): exactly one PATCH answered 204 (statuses: ${summary(replies)})`)
    t.same(others.filter((r) => r.status !== 409 && r.status !== 423).map((r) => `${r.status} ${r.text}`), [],
      `round ${round}: every other PATCH answered 409 or 423`)
    for (const r of others.filter((r) => r.status === 409)) {
      if (r.headers['upload-offset'] !== String(offset + CHUNK)) t.fail(`a 409 reports offset ${String(r.headers['upload-offset'])}, expected ${offset + CHUNK}`)
    }
    const winner = winners[0]
    if (winner === undefined) continue
    t.equal(winner.r.headers['upload-offset'], String(offset + CHUNK), `round ${round}: the winner's reply carries the new offset`)
    expected.push(bodies[winner.i]!)

    // The stored chunk is the winner's body byte for byte: one fill value, no other request's bytes.
    const chunk = (await stored(storage, idOf(url)))?.subarray(offset, offset + CHUNK)
    t.equal(chunk?.length, CHUNK, `round ${round}: the chunk is stored whole`)
    const values = new Set(chunk ?? [])
    t.same([...values], [fill(round, winner.i)], `round ${round}: the stored chunk holds only the winner's byte value (found ${[...values].join(',')})`)
    const h = await head(url)
    t.equal(h.headers['upload-offset'], String(offset + CHUNK), `round ${round}: HEAD reports the winner's offset`)
  }

  await assertStored(t, url, storage, Buffer.concat(expected), 'after both rounds')
})

t.test(`${WRITERS} concurrent PATCHes over ${WRITERS} distinct uploads all succeed`, async (t) => {
  const { endpoint, storage } = await startServer(t)
  const urls = await Promise.all(Array.from({ length: WRITERS }, async () => create(endpoint, { 'Upload-Length': String(CHUNK) })))
  t.equal(new Set(urls).size, WRITERS, `${WRITERS} distinct uploads created concurrently`)
  const bodies = urls.map((_, i) => bytes(CHUNK, 1000 + i))
  const replies = await Promise.all(urls.map(async (url, i) => patch(url, 0, bodies[i]!)))
  t.same(replies.map((r) => r.status), replies.map(() => 204), `every PATCH answered 204 (statuses: ${summary(replies)})`)
  for (const [i, url] of urls.entries()) await assertStored(t, url, storage, bodies[i]!, `upload ${i}`)
})

function summary (replies: Response[]): string {
  const counts = new Map<number, number>()
  for (const r of replies) counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
  return [...counts.entries()].map(([s, n]) => `${s}×${n}`).join(', ')
}
