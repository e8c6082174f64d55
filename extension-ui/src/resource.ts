// What the panel is about: Argo CD hands the extension the live object (or the Application itself
// on the application node); the backend wants a {group, version, kind, namespace, name} ref, or no
// ref at all for the Application.
import type { AppRef, ResourceRef } from './types';

// Loose shapes of the objects Argo CD passes as props; everything is optional because live state
// can be missing (e.g. a resource that is OutOfSync and not yet created).
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export interface ResourceStatus {
  group?: string;
  version?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  status?: string;
  health?: { status?: string };
}

export interface Application extends KubeObject {
  spec?: { project?: string };
  status?: {
    sync?: { status?: string };
    health?: { status?: string };
    resources?: ResourceStatus[];
  };
}

export interface Subject {
  app: AppRef;
  /** undefined = the Application itself */
  resource?: ResourceRef;
  /** what the user sees: "Deployment guestbook-ui" */
  label: string;
  kind: string;
  health?: string;
  sync?: string;
}

export function appRef(application: Application): AppRef {
  return {
    namespace: application.metadata?.namespace ?? '',
    name: application.metadata?.name ?? '',
    project: application.spec?.project ?? 'default',
  };
}

function splitApiVersion(apiVersion: string | undefined): { group: string; version: string } {
  const v = apiVersion ?? '';
  const slash = v.indexOf('/');
  return slash < 0 ? { group: '', version: v } : { group: v.slice(0, slash), version: v.slice(slash + 1) };
}

/**
 * Argo CD 3.4+ shows resource tabs on ApplicationSet pages too, and there the matcher `'**', '*'` hands
 * the ApplicationSet in as `application` (docs/upstream-facts.md, Argo CD UI extensions). The backend
 * and Argo CD's proxy know only Applications: asking about `<ns>:<appset>` would be refused, or answered
 * about an unrelated Application of the same name. So the panel says what it works on and sends nothing.
 */
export function isApplicationSet(application: KubeObject | undefined): boolean {
  if (!application) return false;
  return splitApiVersion(application.apiVersion).group === 'argoproj.io' && application.kind === 'ApplicationSet';
}

function isTheApplication(resource: KubeObject | undefined, application: Application): boolean {
  if (!resource || resource === application) return true;
  const { group } = splitApiVersion(resource.apiVersion);
  return (
    group === 'argoproj.io' &&
    resource.kind === 'Application' &&
    resource.metadata?.name === application.metadata?.name &&
    (resource.metadata?.namespace ?? '') === (application.metadata?.namespace ?? '')
  );
}

export function subjectOf(resource: KubeObject | undefined, application: Application): Subject {
  const app = appRef(application);
  if (isTheApplication(resource, application) || !resource?.metadata?.name || !resource.kind) {
    return {
      app,
      label: `Application ${app.name}`,
      kind: 'Application',
      health: application.status?.health?.status,
      sync: application.status?.sync?.status,
    };
  }
  const { group, version } = splitApiVersion(resource.apiVersion);
  const ref: ResourceRef = {
    group,
    version,
    kind: resource.kind,
    namespace: resource.metadata.namespace ?? '',
    name: resource.metadata.name,
  };
  const status = (application.status?.resources ?? []).find(
    (r) =>
      (r.group ?? '') === group &&
      r.kind === ref.kind &&
      (r.namespace ?? '') === ref.namespace &&
      r.name === ref.name,
  );
  return {
    app,
    resource: ref,
    label: `${ref.kind} ${ref.name}`,
    kind: ref.kind,
    health: status?.health?.status,
    sync: status?.status,
  };
}

/** sessionStorage key of the conversation about this subject (per application + resource). */
export function conversationKey(s: Subject): string {
  const r = s.resource;
  const res = r ? `${r.group}/${r.kind}/${r.namespace}/${r.name}` : '-';
  return `argocd-assistant/v1/conversation/${s.app.namespace}/${s.app.name}/${res}`;
}

/** First questions that fit the subject's state: the broken state first, then a general one. */
export function suggestions(s: Subject): string[] {
  const out: string[] = [];
  const health = s.health;
  if (health === 'Degraded') out.push('Why is this Degraded?');
  else if (health === 'Progressing') out.push('Why is this still Progressing?');
  else if (health === 'Missing') out.push('Why is this Missing?');
  else if (health === 'Suspended') out.push('Why is this Suspended?');
  else if (health === 'Unknown') out.push('Why is the health of this Unknown?');
  if (s.sync === 'OutOfSync') out.push('Why is this OutOfSync?');
  out.push(s.resource ? `Explain this ${s.kind}` : 'Explain this application');
  if (s.kind === 'Pod' || s.kind === 'Deployment' || s.kind === 'StatefulSet' || s.kind === 'DaemonSet') {
    out.push('What do the recent logs and events say?');
  } else if (!s.resource && health === 'Healthy' && s.sync !== 'OutOfSync') {
    out.push('Is anything here likely to break soon?');
  }
  return out;
}
