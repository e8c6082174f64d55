// The panel's names for the backend's wire types. The shapes themselves are generated from the
// backend's OpenAPI document into wire.ts (`make wire-types`; a test fails when it drifts), so the
// backend stays the one source of truth (README, "HTTP API and error codes").
import type * as wire from './wire';

export type ContextItem = wire.ContextItem;
/** The `context` event: what the model was shown for a turn. */
export type ContextInfo = wire.ContextEvent;
export type StartEvent = wire.StartEvent;
export type EndEvent = wire.EndEvent;
export type ErrorBody = wire.ErrorBody;
export type ErrorCode = wire.ErrorCode;
export type StoredTurn = wire.StoredTurn;
export type Conversation = wire.Conversation;
export type ModelInfo = wire.ModelInfo;

/** The Application the panel is on, from Argo CD's props. */
export interface AppRef {
  namespace: string;
  name: string;
  project: string;
}

/** The selected resource as the panel keeps it: every field present, '' for none (core group,
 * cluster-scoped). It is sent as the request's `resource` as it is. */
export interface ResourceRef extends wire.Resource {
  group: string;
  namespace: string;
}
