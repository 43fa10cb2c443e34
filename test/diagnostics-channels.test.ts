/**
 * Diagnostics channels: a subscriber sees every lifecycle event once, with the
 * documented message, and only from the plugin instance that published it
 * (`source`). Nothing is built for a channel nobody listens to.
 */
import t from 'tap'
import { subscribe } from 'node:diagnostics_channel'
import { CHANNEL_NAMES, TusError } from '../lib/index.js'
import { startServer } from './helpers/server.js'
import { TUS, bytes, create, patch, send } from './helpers/http.js'
import { idOf, waitFor } from './helpers/tus.js'

t.test('every event once, with its message', async (t) => {
  const seen: Array<{ name: string; message: Record<string, any> }> = []
  const listeners = Object.entries(CHANNEL_NAMES).map(([name, channel]) => {
    const listener = (message: unknown): void => { seen.push({ name, message: message as Record<string, any> }) }
    subscribe(channel, listener)
    return { channel, listener }
  })
  t.teardown(async () => {
    const { unsubscribe } = await import('node:diagnostics_channel')
    for (const { channel, listener } of listeners) unsubscribe(channel, listener)
  })
  const { endpoint } = await startServer(t, { prefix: '/ch', onCreate: () => {}, onBeforeTerminate: ({ upload }) => { if (upload.length === 1) throw new TusError(403, 'no') } })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const id = idOf(url)
  t.equal((await patch(url, 0, bytes(10, 1))).status, 204)
  const other = await create(endpoint, { 'Upload-Length': '5' })
  t.equal((await send('DELETE', other, { headers: TUS })).status, 204)
  const refused = await create(endpoint, { 'Upload-Length': '1' })
  t.equal((await send('DELETE', refused, { headers: TUS })).status, 403)
  await waitFor(() => seen.some((e) => e.name === 'upload:terminated'), 1000, 'the termination event')

  const mine = seen.filter((e) => e.message.source?.prefix === '/ch')
  const names = (id: string): string[] => mine.filter((e) => e.message.upload?.id === id || e.message.id === id).map((e) => e.name)
  t.same(names(id), ['upload:created', 'patch:start', 'upload:received', 'upload:completed', 'patch:end'], 'an upload\'s life: created, its PATCH, bytes received, completed')
  t.same(names(idOf(other)), ['upload:created', 'upload:terminated'])
  t.equal(mine.find((e) => e.name === 'upload:terminated')!.message.reason, 'client')
  t.equal(mine.find((e) => e.name === 'upload:received')!.message.bytes, 10)
  t.ok(mine.find((e) => e.name === 'patch:end')!.message.durationMs >= 0, 'patch:end has its duration')
  const hookEnds = mine.filter((e) => e.name === 'hook:end').map((e) => `${e.message.hook}${e.message.error === undefined ? '' : ' (threw)'}`)
  t.same(hookEnds, ['onCreate', 'onCreate', 'onBeforeTerminate', 'onCreate', 'onBeforeTerminate (threw)'], 'every hook run, timed')
  t.same(mine.filter((e) => e.name === 'hook:error').map((e) => e.message.hook), ['onBeforeTerminate'], 'and the one that threw on hook:error')
  const writes = mine.filter((e) => e.name === 'store:operation' && e.message.operation === 'write')
  t.equal(writes.length, 1, 'one store write')
  t.equal(writes[0]!.message.store, 'file')
})
