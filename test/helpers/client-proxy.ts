/**
 * A TCP proxy in front of a test server that cuts connections on purpose:
 * `cutAfter(n)` says after how many client-to-server bytes the n-th
 * connection (from 0) is destroyed, both ways, or null to leave it alone.
 */
import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

interface Teardown { teardown(fn: () => unknown): void }

export interface FaultyProxy {
  /** e.g. http://127.0.0.1:40000 */
  origin: string
  /** Connections cut so far. */
  cuts: () => number
  connections: () => number
}

export async function faultyProxy (t: Teardown, target: string, cutAfter: (connection: number) => number | null): Promise<FaultyProxy> {
  const { hostname, port } = new URL(target)
  let connections = 0
  let cuts = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const index = connections++
    const limit = cutAfter(index)
    const upstream = connect(Number(port), hostname)
    sockets.add(client)
    sockets.add(upstream)
    let forwarded = 0
    const cut = (): void => {
      cuts++
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (data: Buffer) => {
      if (limit !== null && forwarded + data.length > limit) {
        upstream.write(data.subarray(0, limit - forwarded), () => cut())
        forwarded = limit
        client.pause()
        return
      }
      forwarded += data.length
      if (!upstream.write(data)) client.pause()
    })
    upstream.on('drain', () => { if (limit === null || forwarded < limit) client.resume() })
    upstream.on('data', (data: Buffer) => { if (!client.write(data)) upstream.pause() })
    client.on('drain', () => upstream.resume())
    const close = (): void => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
    client.on('close', close)
    upstream.on('close', close)
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const address = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${address.port}`, cuts: () => cuts, connections: () => connections }
}
