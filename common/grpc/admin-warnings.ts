/**
 * Trailer key of the warnings an admin-API write returns with its answer (CreateEntry, UpdateEntry):
 * one printable-ASCII value per warning.
 */
export const WARNING_TRAILER = 'tessera-warning'
