// A reply sent while the client is still sending its body (here a 409 for a wrong
// Upload-Offset, answered before the body is read) reaches the client: the rest of
// the body is read and dropped instead of the connection being reset under it.
import t from 'tap'
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http'
import { startServer } from './helpers/server.js'
import { TUS, OCTET, create } from './helpers/http.js'

interface Answer { status: number | string; text: string; reused: boolean }

/** Answers once the reply has ended and, on a kept-alive connection, the body has been sent (the socket is free again). */
function patchWrongOffset (url: string, body: Buffer, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve) => {
    const req: ClientRequest = request(url, { method: 'PATCH', agent, headers: { ...TUS, ...OCTET, 'Upload-Offset': '5' } }, (res: IncomingMessage) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => {
        const answer = { status: res.statusCode ?? 0, text, reused: req.reusedSocket }
        if (agent === false || req.writableFinished) resolve(answer)
        else req.once('finish', () => setImmediate(() => resolve(answer)))
      })
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: `response ${err.code ?? err.message}`, text, reused: false }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: `request ${err.code ?? err.message}`, text: '', reused: false }))
    req.end(body)
  })
}

t.test('a client that asked to close gets the early reply, not a reset', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': String(64 << 20) })
  const body = Buffer.alloc(32 << 20, 7)
  for (let i = 0; i < 10; i++) {
    const answer = await patchWrongOffset(url, body, false) // agent: false sends Connection: close
    t.equal(answer.status, 409, `attempt ${i + 1}: the 409 arrived`)
    t.match(answer.text, /Upload-Offset 5 does not match/)
  }
})

t.test('a kept-alive connection is drained and reused', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': String(64 << 20) })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const first = await patchWrongOffset(url, Buffer.alloc(4 << 20, 1), agent)
  t.equal(first.status, 409)
  const second = await patchWrongOffset(url, Buffer.alloc(1 << 20, 2), agent)
  t.equal(second.status, 409)
  t.ok(second.reused, 'the second request went over the same connection')
})
