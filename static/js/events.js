/**
 * Wire types of the gateway's protocol: the envelope and the gateway's own messages, mirroring
 * realtime/wire/protocol.py, and the command payloads. The `data` of every event type is generated
 * from realtime/wire/events.py into events.generated.ts, re-exported here.
 */
import { EVENT_TYPES } from "./events.generated.js";
// Every event type's data, from the schema table
export * from "./events.generated.js";
/** Every event type a client may subscribe to (the keys of realtime.wire.events.EVENT_SCHEMAS). */
export const SUBSCRIBABLE_EVENT_TYPES = EVENT_TYPES;
