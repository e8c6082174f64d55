// Wire types of the backend's HTTP API (README, "HTTP API and error codes"); the backend is the source of truth.

export interface AppRef {
  namespace: string;
  name: string;
  project: string;
}

export interface ResourceRef {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface ContextItem {
  kind: string;
  ref: string;
  tokens: number;
  truncated: boolean;
  redactions: number;
}

export interface ContextInfo {
  items: ContextItem[];
  tokens_total: number;
  budget: number;
}

export interface StartEvent {
  conversation_id: string;
  provider: string;
  model: string;
}

export interface EndEvent {
  conversation_id: string;
  usage?: Record<string, number> | null;
  elapsed_ms?: number;
}

export interface ErrorBody {
  code: string;
  message: string;
}

export interface StoredTurn {
  question: string;
  answer: string;
  resource?: Partial<ResourceRef> | null;
}

export interface Conversation {
  conversation_id: string;
  turns: StoredTurn[];
}

export interface ModelInfo {
  id: string;
  default?: boolean;
}
