"""tinmen.viewer — ``tinmen view``: a read-only web view of a store (studies, sessions, the
step timeline with belief graphs, decisions and model calls), replay, fork and diff from the
page, and the T2I agent live in the browser. See docs/viewer.md."""

from tinmen.viewer.app import ViewerConfig, create_app

__all__ = ["ViewerConfig", "create_app"]
