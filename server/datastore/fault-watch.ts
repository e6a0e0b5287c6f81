import { type IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { Datastore } from './ports.js'

const STORES = ['entries', 'joinTokens', 'agents', 'bundles', 'keyJournal', 'tasks'] as const

/** The datastore failures an operator must hear about, whoever made the call. */
const WATCHED = ['ERR_DATASTORE_CORRUPT', 'ERR_DATASTORE_IO'] as const

/**
 * Wraps every method of `store` that returns a promise: a rejection with one of {@link WATCHED} is
 * reported to `onFault`, then passed on unchanged. Methods run on the store itself (its private
 * fields work as before).
 */
function watchStore<S extends object>(store: S, onFault: (err: IdentityError) => void): S {
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args)
        if (!(result instanceof Promise)) return result
        return result.catch((err: unknown) => {
          if (isIdentityError(err) && (WATCHED as ReadonlyArray<string>).includes(err.code)) onFault(err)
          throw err
        })
      }
    },
  })
}

/**
 * The same datastore, except that every store call that finds the file corrupt (SQLITE_CORRUPT,
 * SQLITE_NOTADB: ERR_DATASTORE_CORRUPT) or cannot read or write it (a full disk: ERR_DATASTORE_IO)
 * also tells `onFault`, wherever the call came from (admin API, agent API, maintenance), so the
 * server can log the cause and, for corruption, stop reporting ready (DESIGN §9).
 */
export function watchFaults<D extends Datastore>(datastore: D, onFault: (err: IdentityError) => void): D {
  const wrapped = new Map<string | symbol, unknown>(
    STORES.map((name) => [name, watchStore(datastore[name], onFault)]),
  )
  return new Proxy(datastore, {
    get(target, prop) {
      if (wrapped.has(prop)) return wrapped.get(prop)
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
