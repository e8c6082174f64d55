"""argocd-assistant backend: an Argo CD proxy extension that explains broken resources via Llama Stack."""

__version__ = "0.1.0"
