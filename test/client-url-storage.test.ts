// URL storages: the shared contract (find, save, replace, remove, bounded), several
// processes writing one FileURLStorage or SQLiteURLStorage at once, and stale locks.
import t from 'tap'
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileURLStorage, InMemoryURLStorage, SQLiteURLStorage, TusClientError, type URLStorage, type URLStorageEntry } from '../lib/client/index.js'
import { tempDir } from './helpers/server.js'
import { TS_LOADER_ARGS, run } from './helpers/client-spawn.js'

const entry = (url: string, extra: Partial<URLStorageEntry> = {}): URLStorageEntry =>
  ({ uploadUrl: url, partialUrls: null, size: 10, metadata: { a: 'b' }, createdAt: '2024-01-01T00:00:00.000Z', ...extra })

const kinds: Array<[string, (dir: string) => URLStorage]> = [
  ['InMemoryURLStorage', () => new InMemoryURLStorage()],
  ['FileURLStorage', (dir) => new FileURLStorage(join(dir, 'nested', 'uploads.json'))],
  ['SQLiteURLStorage', (dir) => new SQLiteURLStorage(join(dir, 'uploads.db'))]
]

for (const [name, make] of kinds) {
  t.test(`${name}: find, save, replace, remove`, async (t) => {
    const storage = make(tempDir(t))
    t.teardown(() => (storage as { close?: () => void }).close?.())
    t.same(await storage.find('fp'), [], 'nothing at first')
    await storage.save('fp', entry('http://s/files/1'))
    await storage.save('fp', entry('http://s/files/2'))
    await storage.save('other', entry('http://s/files/3'))
    t.same((await storage.find('fp')).map((e) => e.uploadUrl), ['http://s/files/1', 'http://s/files/2'], 'oldest first')
    await storage.save('fp', entry('http://s/files/1', { size: 99 }))
    const found = await storage.find('fp')
    t.equal(found.length, 2, 'saving the same URL replaces its entry')
    t.equal(found.find((e) => e.uploadUrl === 'http://s/files/1')?.size, 99)
    t.same(found[0]!.metadata, { a: 'b' }, 'metadata round-trips')

    await storage.save('par', entry('', { uploadUrl: null, partialUrls: ['http://s/files/p1', 'http://s/files/p2'] }))
    await storage.remove('par', 'http://s/files/p2')
    t.same(await storage.find('par'), [], 'a partial URL removes its parallel entry')

    await storage.remove('fp', 'http://s/files/1')
    t.same((await storage.find('fp')).map((e) => e.uploadUrl), ['http://s/files/2'], 'remove by URL')
    await storage.remove('fp')
    t.same(await storage.find('fp'), [], 'remove every entry of a fingerprint')
    t.equal((await storage.find('other')).length, 1, 'other fingerprints untouched')

    for (let i = 0; i < 25; i++) await storage.save('many', entry(`http://s/files/m${i}`))
    const many = await storage.find('many')
    t.equal(many.length, 10, 'at most 10 entries per fingerprint')
    t.equal(many[many.length - 1]!.uploadUrl, 'http://s/files/m24', 'the newest are kept')
  })
}

for (const kind of ['file', 'sqlite']) {
  t.test(`${kind}: 6 processes writing at once lose nothing`, async (t) => {
    const dir = tempDir(t)
    const path = join(dir, kind === 'file' ? 'uploads.json' : 'uploads.db')
    const children = Array.from({ length: 6 }, (_, i) =>
      run([...TS_LOADER_ARGS, 'test/helpers/client-storage-child.ts', kind, path, `p${i}`, '30'], { timeout: 90_000 }))
    const results = await Promise.all(children)
    for (const [i, result] of results.entries()) t.equal(result.code, 0, `child ${i} succeeded ${result.stderr.slice(0, 500)}`)
    const storage = kind === 'file' ? new FileURLStorage(path) : new SQLiteURLStorage(path)
    t.teardown(() => (storage as { close?: () => void }).close?.())
    let missing = 0
    let stray = 0
    for (let p = 0; p < 6; p++) {
      for (let i = 0; i < 30; i++) {
        const found = await storage.find(`p${p}-${i}`)
        if (i % 2 === 0 && found.length !== 1) missing++
        if (i % 2 === 1 && found.length !== 0) stray++
      }
    }
    t.equal(missing, 0, 'every saved entry is there')
    t.equal(stray, 0, 'every removed entry is gone')
    if (kind === 'file') {
      t.notOk(existsSync(path + '.lock'), 'the lock is released')
      t.doesNotThrow(() => JSON.parse(readFileSync(path, 'utf8')), 'the file is whole JSON')
    }
  })
}

t.test('FileURLStorage: a stale lock is broken, a live one makes a writer wait and then give up', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'uploads.json')
  writeFileSync(path + '.lock', '12345 dead')
  const old = new Date(Date.now() - 60_000)
  utimesSync(path + '.lock', old, old)
  const storage = new FileURLStorage(path, { lockTimeout: 500, staleLockAge: 10_000 })
  await storage.save('fp', entry('http://s/files/1'))
  t.equal((await storage.find('fp')).length, 1, 'saved despite the stale lock')
  t.notOk(existsSync(path + '.lock'), 'and the lock is gone')

  writeFileSync(path + '.lock', '12345 alive')
  const started = Date.now()
  const error = await storage.save('fp', entry('http://s/files/2')).catch((err: unknown) => err)
  t.ok(error instanceof TusClientError, 'a held lock: TusClientError after lockTimeout')
  t.match((error as Error).message, /could not take the lock/)
  t.ok(Date.now() - started >= 450, 'after waiting for it')
  t.equal(readFileSync(path + '.lock', 'utf8'), '12345 alive', 'someone else\'s lock is left alone')

  writeFileSync(path, 'not json')
  await t.rejects(new FileURLStorage(path).find('fp'), /not a fastify-tus storage file/, 'a foreign file is reported, not overwritten')
})
