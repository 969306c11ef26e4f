// Work that survives a reload: each photo's objects (app/objects.js toRecord) in the browser's
// IndexedDB, keyed by the sha256 of the photo's bytes — the same key whatever the folder is called or
// wherever it was opened from, and a different one for a different photo with the same name.
//
// Every change is written at once (one small put, well under a millisecond of the browser's time): a
// reload or a closed tab a moment after a click loses nothing; a browser aborts a transaction still
// waiting when the page goes, so nothing is held back to be batched. A browser without IndexedDB (or one that
// refuses it: a private window's quota) gets a store that keeps nothing, and the page says so.

const DB = "sam2enc", STORE = "photos";

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/**
 * @param {{indexedDB?: IDBFactory}} options
 * @returns {Promise<{persistent: boolean, why?: string, load(key: string): Promise<object|null>,
 *   save(key: string, record: object): void, flush(): Promise<void>, forget(keys: string[]): Promise<number>}>}
 */
export async function openStore({ indexedDB } = {}) {
  let db;
  try {
    const open = (indexedDB ?? globalThis.indexedDB).open(DB, 1); // absent or refused: caught below
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    db = await request(open);
  } catch (err) {
    return memoryOnly(`this browser keeps no saved work here (${err?.message || "no IndexedDB"})`);
  }
  const waiting = new Map(); // key → record, being written
  const tx = (mode) => db.transaction(STORE, mode).objectStore(STORE);
  const flush = async () => {
    if (!waiting.size) return;
    const batch = [...waiting];
    waiting.clear();
    const t = db.transaction(STORE, "readwrite");
    for (const [key, record] of batch) t.objectStore(STORE).put({ ...record, savedAt: Date.now() }, key);
    await new Promise((resolve, reject) => { t.oncomplete = resolve; t.onerror = () => reject(t.error); });
  };
  return {
    persistent: true,
    async load(key) {
      if (waiting.has(key)) return waiting.get(key);
      return (await request(tx("readonly").get(key))) ?? null;
    },
    save(key, record) {
      waiting.set(key, record);
      flush().catch(() => {});
    },
    flush,
    async forget(keys) {
      for (const key of keys) waiting.delete(key);
      const t = db.transaction(STORE, "readwrite");
      const store = t.objectStore(STORE);
      const had = await Promise.all(keys.map((key) => request(store.count(key))));
      for (const key of keys) store.delete(key);
      await new Promise((resolve, reject) => { t.oncomplete = resolve; t.onerror = () => reject(t.error); });
      return had.filter(Boolean).length;
    },
  };
}

function memoryOnly(why) {
  const records = new Map();
  return {
    persistent: false, why,
    load: async (key) => records.get(key) ?? null,
    save: (key, record) => { records.set(key, record); },
    flush: async () => {},
    forget: async (keys) => keys.filter((key) => records.delete(key)).length,
  };
}
