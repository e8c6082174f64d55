// The chat state of one subject (application + resource), kept outside React so that switching
// tabs (which unmounts the panel) neither loses an answer that is still streaming nor aborts it,
// and a reload finds the conversation again through sessionStorage + the backend.
import { AssistantClient, AssistantFailure, isAbort } from './api';
import type { Gathered } from './attachments';
import type { UiError } from './errors';
import { conversationKey, type Subject } from './resource';
import type { ContextInfo, ModelInfo } from './types';

export type TurnStatus = 'streaming' | 'done' | 'stopped' | 'error';

export interface Turn {
  id: number;
  question: string;
  answer: string;
  status: TurnStatus;
  context?: ContextInfo;
  model?: string;
  error?: UiError;
  elapsedMs?: number;
  /** what the panel could not attach from Argo CD's API, and why */
  attachmentNotes?: string[];
}

/** Reads the attachments for a question (set by the panel, which has Argo CD's props). */
export type AttachmentSource = (signal: AbortSignal) => Promise<Gathered>;

export interface SessionState {
  turns: Turn[];
  conversationId?: string;
  busy: boolean;
  restoring: boolean;
  restoreError?: UiError;
  models: ModelInfo[];
  /** undefined = the backend's default */
  model?: string;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

type Listener = (s: SessionState) => void;

export class ChatSession {
  private state: SessionState;
  private listeners = new Set<Listener>();
  private controller: AbortController | null = null;
  private nextId = 1;
  private restored = false;
  private modelsLoaded = false;
  private readonly key: string;
  private attachmentSource: AttachmentSource | null = null;

  constructor(
    readonly subject: Subject,
    private readonly client: AssistantClient,
    private readonly storage: KeyValueStore | null,
  ) {
    this.key = conversationKey(subject);
    this.state = {
      turns: [],
      conversationId: this.readStoredId(),
      busy: false,
      restoring: false,
      models: [],
    };
  }

  getState(): SessionState {
    return this.state;
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  private set(patch: Partial<SessionState>): void {
    this.state = { ...this.state, ...patch };
    for (const fn of Array.from(this.listeners)) fn(this.state);
  }

  private patchTurn(id: number, patch: Partial<Turn> | ((t: Turn) => Partial<Turn>)): void {
    this.set({
      turns: this.state.turns.map((t) => (t.id === id ? { ...t, ...(typeof patch === 'function' ? patch(t) : patch) } : t)),
    });
  }

  private readStoredId(): string | undefined {
    try {
      return this.storage?.getItem(this.key) ?? undefined;
    } catch {
      return undefined; // storage disabled by the browser: continuity is best-effort
    }
  }

  private storeId(id: string | undefined): void {
    try {
      if (id) this.storage?.setItem(this.key, id);
      else this.storage?.removeItem(this.key);
    } catch {
      // storage full or disabled: the conversation still works until the tab closes
    }
  }

  private setConversation(id: string | undefined): void {
    if (id === this.state.conversationId) return;
    this.storeId(id);
    this.set({ conversationId: id });
  }

  /** Fetch the stored turns once (first mount after a reload). */
  async restore(force = false): Promise<void> {
    if ((this.restored && !force) || this.state.busy) return;
    this.restored = true;
    const id = this.state.conversationId;
    if (!id || this.state.turns.length > 0) return;
    this.set({ restoring: true, restoreError: undefined });
    try {
      const conv = await this.client.conversation(id);
      if (this.state.conversationId !== id) return; // user started over meanwhile
      if (!conv) {
        this.setConversation(undefined);
        this.set({ restoring: false });
        return;
      }
      const turns: Turn[] = conv.turns.map((t) => ({
        id: this.nextId++,
        question: t.question,
        answer: t.answer,
        status: 'done',
      }));
      this.set({ turns: [...turns, ...this.state.turns], restoring: false });
    } catch (e) {
      const error = e instanceof AssistantFailure ? e.error : undefined;
      this.set({ restoring: false, restoreError: error ?? { code: 'internal', message: String(e), retryable: true } });
    }
  }

  /** Load the model list once; the picker only shows when there is a choice. */
  async loadModels(): Promise<void> {
    if (this.modelsLoaded) return;
    this.modelsLoaded = true;
    try {
      const models = await this.client.models();
      this.set({ models });
    } catch {
      // no picker then: chatting still works with the backend's default
    }
  }

  setAttachmentSource(source: AttachmentSource | null): void {
    this.attachmentSource = source;
  }

  private async attachments(id: number, signal: AbortSignal): Promise<unknown[]> {
    if (!this.attachmentSource) return [];
    try {
      const gathered = await this.attachmentSource(signal);
      if (gathered.notes.length) this.patchTurn(id, { attachmentNotes: gathered.notes });
      return gathered.attachments;
    } catch {
      return []; // never the question: it goes without them
    }
  }

  setModel(model: string | undefined): void {
    this.set({ model });
  }

  async ask(question: string): Promise<void> {
    const q = question.trim();
    if (!q || this.state.busy) return;
    const id = this.nextId++;
    const controller = new AbortController();
    this.controller = controller;
    this.set({
      busy: true,
      restoreError: undefined,
      turns: [...this.state.turns, { id, question: q, answer: '', status: 'streaming', model: this.state.model }],
    });
    try {
      const attachments = await this.attachments(id, controller.signal);
      await this.client.chat(
        {
          question: q,
          conversationId: this.state.conversationId,
          resource: this.subject.resource,
          model: this.state.model,
          attachments,
        },
        (ev) => {
          switch (ev.type) {
            case 'start':
              // null on a new conversation: the id arrives with `end`.
              if (ev.data.conversation_id !== null) this.setConversation(ev.data.conversation_id);
              this.patchTurn(id, { model: ev.data.model });
              break;
            case 'context':
              this.patchTurn(id, { context: ev.data });
              break;
            case 'token':
              this.patchTurn(id, (t) => ({ answer: t.answer + ev.text }));
              break;
            case 'end':
              // `end` carries the id for the next turn; it may differ from `start`'s.
              this.setConversation(ev.data.conversation_id);
              this.patchTurn(id, { status: 'done', elapsedMs: ev.data.elapsed_ms });
              break;
          }
        },
        controller.signal,
      );
    } catch (e) {
      if (controller.signal.aborted || isAbort(e)) {
        this.patchTurn(id, { status: 'stopped' });
      } else {
        const error = e instanceof AssistantFailure ? e.error : { code: 'internal', message: String(e), retryable: true };
        if (error.code === 'conversation_not_found') this.setConversation(undefined);
        this.patchTurn(id, { status: 'error', error });
      }
    } finally {
      if (this.controller === controller) this.controller = null;
      this.set({ busy: false });
    }
  }

  /** Abort the answer in flight: closes the HTTP stream, so the backend sees the disconnect. */
  stop(): void {
    this.controller?.abort();
  }

  /** Ask a failed turn's question again (the failed turn is replaced). */
  async retry(turnId: number): Promise<void> {
    const turn = this.state.turns.find((t) => t.id === turnId);
    if (!turn || this.state.busy) return;
    this.set({ turns: this.state.turns.filter((t) => t.id !== turnId) });
    await this.ask(turn.question);
  }

  /** Forget the conversation here and, best-effort, in the backend. */
  async newConversation(): Promise<void> {
    this.stop();
    const old = this.state.conversationId;
    this.setConversation(undefined);
    this.set({ turns: [], restoreError: undefined, busy: false });
    if (old) {
      try {
        await this.client.deleteConversation(old);
      } catch {
        // the old conversation stays on the server; it is no longer referenced here
      }
    }
  }
}

const sessions = new Map<string, ChatSession>();

/** One session per subject for the life of the page. */
export function sessionFor(subject: Subject, make: () => ChatSession): ChatSession {
  const key = conversationKey(subject);
  let s = sessions.get(key);
  if (!s) {
    s = make();
    sessions.set(key, s);
  }
  return s;
}
