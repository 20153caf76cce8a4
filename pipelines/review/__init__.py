"""Human review in a real Label Studio server: server management, push, pull, agreement.

`server` starts and stops the server; `sync` pushes pre-annotated tasks and pulls annotations
(idempotent both ways); `_client` is the only module that talks to `label_studio_sdk`.
"""

from pipelines.review.agreement import agreement
from pipelines.review.server import (
    ServerInfo,
    WorkspaceServer,
    find_label_studio,
    start_server,
    stop_pid,
)
from pipelines.review.sync import (
    PullResult,
    PushResult,
    ReviewConfig,
    connect,
    pull,
    push,
    review_status,
)

__all__ = [
    "agreement", "ServerInfo", "WorkspaceServer", "find_label_studio", "start_server", "stop_pid",
    "PullResult", "PushResult", "ReviewConfig", "connect", "pull", "push", "review_status",
]
