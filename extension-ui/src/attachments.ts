// What to read from Argo CD's API for a question, and reading it: the diff inputs of the OutOfSync
// resources in scope of the question, the synced revision's commit, and the logs of unhealthy Pods
// under the selected resource (found in the `tree` prop through health and parentRefs). All reads
// run concurrently, each bounded by its own timeout; a failed read drops that attachment with a
// note, never the question. The backend checks every attachment against the Application's scope.
import type { ArgoCDApi, Fetched, ManagedResource } from './argocdApi';
import type { Application, KubeObject, Subject } from './resource';
import type * as wire from './wire';

export type Attachment = wire.ManagedResourceAttachment | wire.RevisionAttachment | wire.LogsAttachment;

export const MAX_DIFFS = 10;
export const MAX_LOG_CONTAINERS = 4;
export const LOG_TAIL_LINES = 200;
export const MAX_LOG_CHARS = 32 * 1024;

interface TreeRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
}

interface TreeNode extends TreeRef {
  version?: string;
  parentRefs?: TreeRef[];
  health?: { status?: string };
  info?: { name?: string; value?: string }[];
}

export interface LogTarget {
  namespace: string;
  name: string;
  container?: string;
  previous: boolean;
}

export interface Plan {
  diffs: { group: string; version: string; kind: string; namespace: string; name: string }[];
  revisions: { revision: string; sourceIndex?: number }[];
  logs: LogTarget[];
}

interface AppStatus {
  sync?: { status?: string; revision?: string; revisions?: string[] };
  resources?: { group?: string; version?: string; kind?: string; namespace?: string; name?: string; status?: string }[];
}

function nodesOf(tree: unknown): TreeNode[] {
  const nodes = (tree as { nodes?: unknown } | undefined)?.nodes;
  return Array.isArray(nodes) ? (nodes as TreeNode[]) : [];
}

const key = (r: TreeRef) => `${r.group ?? ''}/${r.kind ?? ''}/${r.namespace ?? ''}/${r.name ?? ''}`;

function restarts(node: TreeNode): number {
  const item = (node.info ?? []).find((i) => i.name === 'Restart Count');
  const n = Number(item?.value ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Pods of the tree under `root` (itself included), following parentRefs by uid or by name. */
function podsUnder(nodes: TreeNode[], root: TreeRef | undefined): TreeNode[] {
  const byUid = new Map(nodes.filter((n) => n.uid).map((n) => [n.uid as string, n]));
  const byKey = new Map(nodes.map((n) => [key(n), n]));
  const rootKey = root ? key(root) : undefined;
  const under = (node: TreeNode, depth: number): boolean => {
    if (!rootKey || key(node) === rootKey) return true;
    if (depth > 6) return false;
    return (node.parentRefs ?? []).some((p) => {
      const parent = (p.uid && byUid.get(p.uid)) || byKey.get(key(p));
      return parent ? under(parent, depth + 1) : key(p) === rootKey;
    });
  };
  return nodes.filter((n) => n.kind === 'Pod' && (n.group ?? '') === '' && under(n, 0));
}

interface LivePod extends KubeObject {
  status?: { containerStatuses?: { name?: string; ready?: boolean; restartCount?: number }[] };
}

export function planAttachments(subject: Subject, application: Application, tree: unknown, live?: KubeObject): Plan {
  const plan: Plan = { diffs: [], revisions: [], logs: [] };
  if (application.kind === 'ApplicationSet') return plan; // Argo CD's application API does not serve them
  const status = (application.status ?? {}) as AppStatus;
  const resource = subject.resource;
  for (const r of status.resources ?? []) {
    if (r.status !== 'OutOfSync' || !r.kind || !r.name || !r.version) continue;
    const entry = { group: r.group ?? '', version: r.version, kind: r.kind, namespace: r.namespace ?? '', name: r.name };
    if (!resource || key(entry) === key(resource)) plan.diffs.push(entry);
  }
  plan.diffs = plan.diffs.slice(0, MAX_DIFFS);
  const sync = status.sync ?? {};
  if (sync.revisions?.length) sync.revisions.forEach((revision, sourceIndex) => revision && plan.revisions.push({ revision, sourceIndex }));
  else if (sync.revision) plan.revisions.push({ revision: sync.revision });

  const unhealthy = podsUnder(nodesOf(tree), resource)
    .filter((p) => p.health?.status && p.health.status !== 'Healthy')
    .sort((a, b) => key(a).localeCompare(key(b)));
  const livePod = live as LivePod | undefined;
  for (const pod of unhealthy) {
    if (!pod.name || !pod.namespace) continue;
    // The selected Pod's live object names its containers; the tree does not (the default container then).
    const statuses = resource?.kind === 'Pod' && livePod?.metadata?.name === pod.name ? livePod.status?.containerStatuses ?? [] : [];
    const bad = statuses.filter((c) => c.name && (!c.ready || (c.restartCount ?? 0) > 0));
    const containers = bad.length ? bad.map((c) => ({ name: c.name, restarted: (c.restartCount ?? 0) > 0 })) : [{ name: undefined, restarted: restarts(pod) > 0 }];
    for (const c of containers) {
      plan.logs.push({ namespace: pod.namespace, name: pod.name, container: c.name, previous: false });
      if (c.restarted) plan.logs.push({ namespace: pod.namespace, name: pod.name, container: c.name, previous: true });
    }
  }
  plan.logs = plan.logs.slice(0, MAX_LOG_CONTAINERS);
  return plan;
}

export interface Gathered {
  attachments: Attachment[];
  /** what was left out and why, for the context disclosure */
  notes: string[];
}

function failure(what: string, f: Fetched<unknown>): string {
  if (f.ok) return '';
  if (f.reason === 'timeout') return `${what} not included: Argo CD did not answer in time`;
  return `${what} not included: Argo CD answered ${f.status ?? 'with an error'}`;
}

function stateText(item: ManagedResource | undefined, preferred: 'target' | 'live'): string | null {
  if (!item) return null;
  // As Argo CD's own diff view: the predicted and normalized states when it has them.
  const text = preferred === 'target' ? item.predictedLiveState || item.targetState : item.normalizedLiveState || item.liveState;
  return text && text !== 'null' ? text : null;
}

export async function gatherAttachments(api: ArgoCDApi, plan: Plan, signal?: AbortSignal): Promise<Gathered> {
  const notes: string[] = [];
  const attachments: Attachment[] = [];
  const one = plan.diffs.length === 1 ? plan.diffs[0] : undefined;
  const filter = one ? { group: one.group, kind: one.kind, namespace: one.namespace, name: one.name } : {};
  const [managed, revisions, logs] = await Promise.all([
    plan.diffs.length ? api.managedResources(filter, signal) : Promise.resolve(null),
    Promise.all(plan.revisions.map((r) => api.revisionMetadata(r.revision, r.sourceIndex, signal))),
    Promise.all(
      plan.logs.map((l) =>
        api.logs({ namespace: l.namespace, podName: l.name, container: l.container, previous: l.previous, tailLines: LOG_TAIL_LINES, maxChars: MAX_LOG_CHARS }, signal),
      ),
    ),
  ]);
  if (managed) {
    if (!managed.ok) notes.push(failure('the diff from Git', managed));
    else {
      for (const d of plan.diffs) {
        const item = managed.value.find((m) => key(m) === key(d));
        const target = stateText(item, 'target');
        const live = stateText(item, 'live');
        if (target === null && live === null) continue;
        attachments.push({ type: 'managed_resource', resource: d, target, live });
      }
    }
  }
  revisions.forEach((r, i) => {
    const { revision, sourceIndex } = plan.revisions[i];
    if (!r.ok) {
      notes.push(failure(`the commit of revision ${revision.slice(0, 12)}`, r));
      return;
    }
    attachments.push({
      type: 'revision',
      revision,
      source_index: sourceIndex ?? null,
      author: (r.value.author ?? '').slice(0, 1024),
      date: r.value.date ?? null,
      message: (r.value.message ?? '').slice(0, 16 * 1024),
      tags: (r.value.tags ?? []).slice(0, 50),
    });
  });
  let forbidden = false;
  logs.forEach((l, i) => {
    const target = plan.logs[i];
    if (!l.ok) {
      if (l.reason === 'forbidden') forbidden = true;
      else notes.push(failure(`logs of Pod ${target.name}`, l));
      return;
    }
    if (!l.value) return;
    attachments.push({
      type: 'logs',
      resource: { group: '', version: 'v1', kind: 'Pod', namespace: target.namespace, name: target.name },
      container: target.container ?? null,
      previous: target.previous,
      text: l.value,
    });
  });
  if (forbidden) notes.unshift('logs not included: your Argo CD role has no `logs, get`');
  return { attachments, notes };
}
