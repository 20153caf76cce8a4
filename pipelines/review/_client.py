"""The Label Studio boundary: the SDK wrapped with retries, and pure record <-> task mappings.

Nothing else in the project imports `label_studio_sdk`. The mapping functions at the top are
pure (tested without a server); `LabelStudioClient` turns connection failures, 5xx answers and
bad tokens into `ReviewSyncError`s that say what is wrong and how to fix it.

Task data carries our record id (`ext_id`) and the push batch id (`push_batch`): the server has
no idempotent import, so a push that crashed after importing is reconciled by its batch id.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any, Callable, TypeVar
from xml.sax.saxutils import quoteattr

from pipelines.errors import ReviewSyncError
from pipelines.records import Record, render_turns

__all__ = [
    "CHOICES_NAME",
    "EDIT_NAME",
    "AnnotationResult",
    "label_config",
    "project_description",
    "record_to_task",
    "choice_result",
    "annotation_to_result",
    "PAIRWISE_NAME",
    "pairwise_label_config",
    "PAIRWISE_DESCRIPTION",
    "pair_to_task",
    "pairwise_result",
    "PairChoice",
    "annotation_to_choice",
    "LabelStudioClient",
]

CHOICES_NAME = "label"
EDIT_NAME = "edited_response"
T = TypeVar("T")


# -- pure mappings -------------------------------------------------------------------------------
DIALOGUE_NAME = "dialogue"


def _target(kind: str) -> str:
    """The object tag the Choices point at (the prompt for instruction data, the dialogue for
    chat)."""
    return {"instruction": "prompt", "chat": DIALOGUE_NAME}.get(kind, "text")


def label_config(kind: str, classes: list[str]) -> str:
    """The labeling interface for one scheme and data kind.

    text: the text and a single-choice list of the classes. chat: the conversation turn by turn
    (a `Paragraphs` tag in dialogue layout over the task's `dialogue` list of {role, content})
    and one choice for the whole conversation. instruction: prompt and response side by side,
    the classes, and a TextArea for a corrected response.
    """
    if not classes:
        raise ReviewSyncError("a label scheme needs at least one class")
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    if kind == "instruction":
        return f"""<View>
  <View style="display: flex; gap: 1em;">
    <View style="flex: 1;"><Header value="Prompt"/><Text name="prompt" value="$prompt"/></View>
    <View style="flex: 1;"><Header value="Response"/><Text name="response" value="$response"/></View>
  </View>
  <Header value="Label"/>
  <Choices name="{CHOICES_NAME}" toName="prompt" choice="single" showInline="true">
{choices}
  </Choices>
  <Header value="Corrected response (leave empty if the response is fine)"/>
  <TextArea name="{EDIT_NAME}" toName="response" editable="true" maxSubmissions="1" rows="4"/>
</View>"""
    if kind == "chat":
        return f"""<View>
  <Paragraphs name="{DIALOGUE_NAME}" value="${DIALOGUE_NAME}" layout="dialogue" nameKey="role"
              textKey="content"/>
  <Header value="Label (the whole conversation)"/>
  <Choices name="{CHOICES_NAME}" toName="{DIALOGUE_NAME}" choice="single" showInline="true">
{choices}
  </Choices>
</View>"""
    return f"""<View>
  <Text name="text" value="$text"/>
  <Header value="Label"/>
  <Choices name="{CHOICES_NAME}" toName="text" choice="single" showInline="true">
{choices}
  </Choices>
</View>"""


def project_description(scheme: str, kind: str, classes: list[str]) -> str:
    """Instructions for reviewers, shown in the project description."""
    text = (f"Curation Studio review for the '{scheme}' scheme. Each task is pre-filled with the "
            f"weak label (a prediction; least confident tasks come first). Check it, choose the "
            f"right class ({', '.join(classes)}) and submit; skip a task you cannot judge.")
    if kind == "instruction":
        text += (" If the response is wrong or poor, type a corrected response in the text box; "
                 "it replaces the response in the exported dataset.")
    return text


def choice_result(label: str, kind: str, edited_response: str | None = None) -> list[dict]:
    """The annotation/prediction `result` choosing `label` (and optionally an edited response)."""
    out = [{"from_name": CHOICES_NAME, "to_name": _target(kind), "type": "choices",
            "value": {"choices": [label]}}]
    if edited_response is not None and kind == "instruction":
        out.append({"from_name": EDIT_NAME, "to_name": "response", "type": "textarea",
                    "value": {"text": [edited_response]}})
    return out


def record_to_task(record: Record, *, batch_id: str, label: str | None = None,
                   confidence: float | None = None, model_version: str | None = None) -> dict:
    """A Label Studio task for a record, pre-annotated with its weak label as a prediction.

    A chat record carries its turns as `dialogue` (a list of {role, content}, what the chat
    config's `Paragraphs` shows turn by turn) and, for Label Studio's search and data manager,
    `text` (`render_turns`, a blank line between turns: the rendering the LFs and embeddings
    read).
    """
    kind = record.kind
    data: dict[str, Any] = {"ext_id": record.id, "push_batch": batch_id}
    if kind == "instruction":
        data["prompt"] = record.prompt or ""
        data["response"] = record.response or ""
    elif kind == "chat" and record.turns:
        data[DIALOGUE_NAME] = [t.to_dict() for t in record.turns]
        data["text"] = render_turns(record.turns, sep="\n\n")
    else:
        data["text"] = record.text or ""
    task: dict[str, Any] = {"data": data}
    if label is not None:
        pred: dict[str, Any] = {"model_version": model_version or "weak-labels",
                                "result": choice_result(label, kind)}
        if confidence is not None:
            pred["score"] = float(confidence)
        task["predictions"] = [pred]
    return task


@dataclass
class AnnotationResult:
    """What one annotation says about a record under one scheme."""

    annotation_id: int
    label: str | None
    edited_response: str | None
    skipped: bool
    problem: str | None
    annotator_id: int | None
    created_at: str | None
    updated_at: str | None


def annotation_to_result(annotation: dict[str, Any], classes: list[str]) -> AnnotationResult:
    """Read the chosen class and the corrected response out of an annotation's `result`.

    A choice outside `classes` is reported in `problem` and not returned as the label; a
    cancelled (skipped) annotation has no label.
    """
    label = edited = problem = None
    skipped = bool(annotation.get("was_cancelled"))
    for item in annotation.get("result") or []:
        value = item.get("value") or {}
        if item.get("from_name") == CHOICES_NAME and item.get("type") == "choices":
            chosen = value.get("choices") or []
            if len(chosen) != 1:
                problem = f"expected one choice, got {chosen!r}"
            elif chosen[0] not in classes:
                problem = f"choice {chosen[0]!r} is not a class of the scheme ({', '.join(classes)})"
            else:
                label = chosen[0]
        elif item.get("from_name") == EDIT_NAME:
            texts = value.get("text") or []
            joined = "\n".join(t for t in texts if isinstance(t, str)).strip()
            edited = joined or None
    by = annotation.get("completed_by")
    if isinstance(by, dict):
        by = by.get("id")
    return AnnotationResult(
        annotation_id=int(annotation["id"]), label=None if skipped else label,
        edited_response=None if skipped else edited, skipped=skipped, problem=problem,
        annotator_id=by if isinstance(by, int) else None,
        created_at=_iso(annotation.get("created_at")), updated_at=_iso(annotation.get("updated_at")))


# -- pairwise review ----------------------------------------------------------------------------
PAIRWISE_NAME = "preference"
PAIRWISE_DESCRIPTION = (
    "Curation Studio pairwise review. Each task shows one prompt and two candidate responses "
    "(their order is shuffled). Click the better response and submit; skip a task when you "
    "cannot tell them apart (a skip is counted, never stored as a choice).")


def pairwise_label_config() -> str:
    """The pairwise interface: the prompt above two responses side by side, and Label Studio's
    `Pairwise` tag (click one side; the UI submits `{"from_name": "preference", "to_name":
    "preference", "type": "pairwise", "value": {"selected": "left" | "right"}}`, checked by
    the browser test), the picked side highlighted green."""
    return f"""<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Which response is better? Click it, then submit (skip if you cannot tell)."/>
  <Pairwise name="{PAIRWISE_NAME}" toName="answer1,answer2"
            selectionStyle="background-color: #e3f6e8; border: 2px solid #27ae60;"/>
  <View style="display: flex; gap: 1em;">
    <View style="flex: 1;"><Header value="Response 1"/><Text name="answer1" value="$answer1"/></View>
    <View style="flex: 1;"><Header value="Response 2"/><Text name="answer2" value="$answer2"/></View>
  </View>
</View>"""


def pair_to_task(pair_id: str, prompt: str, left: str, right: str, *, batch_id: str,
                 system: str | None = None) -> dict:
    """A pairwise task: `answer1` is the left response, `answer2` the right one."""
    shown = f"{system}\n\n{prompt}" if system else prompt
    return {"data": {"ext_id": pair_id, "push_batch": batch_id, "prompt": shown,
                     "answer1": left, "answer2": right}}


def pairwise_result(choice: str) -> list[dict]:
    """The annotation `result` choosing 'left' or 'right' (what the Pairwise tag submits)."""
    return [{"from_name": PAIRWISE_NAME, "to_name": PAIRWISE_NAME, "type": "pairwise",
             "value": {"selected": choice}}]


@dataclass
class PairChoice:
    """What one annotation of a pair task says."""

    annotation_id: int
    choice: str | None        # left | right; None when skipped or nothing was chosen
    skipped: bool
    problem: str | None
    annotator_id: int | None
    created_at: str | None
    updated_at: str | None


def annotation_to_choice(annotation: dict[str, Any]) -> PairChoice:
    """Read the side a reviewer picked out of a pairwise annotation.

    A cancelled (skipped) annotation and one submitted without a pick have no choice; a pick
    that is neither 'left' nor 'right' is reported in `problem`.
    """
    choice = problem = None
    skipped = bool(annotation.get("was_cancelled"))
    for item in annotation.get("result") or []:
        if item.get("type") == "pairwise" or item.get("from_name") == PAIRWISE_NAME:
            selected = (item.get("value") or {}).get("selected")
            if selected in ("left", "right"):
                choice = selected
            else:
                problem = f"expected 'left' or 'right', got {selected!r}"
    if choice is None and problem is None and not skipped:
        problem = "submitted without choosing a side"
    by = annotation.get("completed_by")
    if isinstance(by, dict):
        by = by.get("id")
    return PairChoice(annotation_id=int(annotation["id"]), choice=None if skipped else choice,
                      skipped=skipped, problem=problem,
                      annotator_id=by if isinstance(by, int) else None,
                      created_at=_iso(annotation.get("created_at")),
                      updated_at=_iso(annotation.get("updated_at")))


def _iso(value: Any) -> str | None:
    """A server timestamp in one format (UTC, microseconds, 'Z'), so that they compare as text.

    The SDK hands some timestamps over as datetimes and others as strings in varying forms.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _filter(items: list[dict], conjunction: str = "and") -> str:
    return json.dumps({"filters": {"conjunction": conjunction, "items": items}})


# -- the client ----------------------------------------------------------------------------------
class LabelStudioClient:
    """A small, retrying facade over `label_studio_sdk.LabelStudio` for what review needs."""

    def __init__(self, url: str, token: str, *, retries: int = 4, backoff: float = 0.5,
                 timeout: float = 120.0, start_hint: str = "curate labelstudio start"):
        from label_studio_sdk import LabelStudio

        self.url = url.rstrip("/")
        self.retries, self.backoff = retries, backoff
        self.start_hint = start_hint
        self._sdk = LabelStudio(base_url=self.url, api_key=token, timeout=timeout)
        # The SDK silently retries connection errors and 5xx on every request, POSTs included:
        # a retried import could create tasks twice. Retries happen here instead, only around
        # calls that are safe to repeat.
        http = getattr(getattr(self._sdk, "_client_wrapper", None), "httpx_client", None)
        if http is not None and hasattr(http, "base_max_retries"):
            http.base_max_retries = 0
        self._users: dict[int, str] | None = None

    @property
    def sdk(self):
        """The underlying SDK client (tests and benchmarks annotate through it)."""
        return self._sdk

    # retries ----------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run `fn`, retrying connection errors and 5xx with exponential backoff."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except ApiError as exc:
                code = exc.status_code or 0
                if code in (401, 403):
                    raise ReviewSyncError(
                        f"Label Studio at {self.url} rejected the API token while trying to {what}"
                        f" (HTTP {code}); check the token (`curate labelstudio token`)") from exc
                if code == 404:
                    raise
                if code < 500 or attempt == self.retries:
                    raise ReviewSyncError(f"Label Studio at {self.url} refused to {what}: HTTP "
                                          f"{code}: {str(exc.body)[:300]}") from exc
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                    httpx.WriteError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise ReviewSyncError(
                        f"cannot reach Label Studio at {self.url} to {what} ({type(exc).__name__}:"
                        f" {exc}); is it running on that port? Start it with `{self.start_hint}`"
                    ) from exc
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    # calls ------------------------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """Who we are on the server; raises a clear ReviewSyncError when it is down or refuses."""
        from pipelines.review.server import health

        if not health(self.url, timeout=5.0):
            raise ReviewSyncError(
                f"Label Studio is not running at {self.url} (no answer on /health; wrong port?);"
                f" start it with `{self.start_hint}`")
        me = self.call("check the token", lambda: self._sdk.users.whoami())
        return {"id": me.id, "email": me.email}

    def get_project(self, project_id: int) -> dict[str, Any] | None:
        """The project, or None when it does not exist (e.g. deleted in the UI)."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            p = self.call("read a project", lambda: self._sdk.projects.get(id=project_id))
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return {"id": p.id, "title": p.title, "task_number": p.task_number,
                "label_config": p.label_config, "sampling": p.sampling}

    def create_project(self, title: str, label_config: str, description: str,
                       model_version: str | None = None) -> int:
        kw: dict[str, Any] = dict(title=title, label_config=label_config, description=description,
                                  expert_instruction=description, show_instruction=True,
                                  sampling="Uncertainty sampling", show_collab_predictions=True,
                                  show_skip_button=True)
        if model_version:
            kw["model_version"] = model_version
        p = self.call("create a project", lambda: self._sdk.projects.create(**kw))
        return int(p.id)

    def set_model_version(self, project_id: int, model_version: str) -> None:
        """Show predictions of this model version and sample uncertain tasks first."""
        self.call("update the project", lambda: self._sdk.projects.update(
            id=project_id, model_version=model_version, sampling="Uncertainty sampling"))

    def set_label_config(self, project_id: int, label_config: str) -> None:
        """Replace the labeling interface (the server refuses if annotations use a removed
        class; the error names them)."""
        self.call("update the labeling interface", lambda: self._sdk.projects.update(
            id=project_id, label_config=label_config))

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        """Import tasks in one call; the task ids come back in the order of `tasks`.

        Not retried after the request was sent: a retry could duplicate tasks. The caller's
        push journal reconciles a failed import instead.
        """
        from label_studio_sdk.core.api_error import ApiError
        import httpx

        try:
            res = self._sdk.projects.import_tasks(id=project_id, request=tasks,
                                                  return_task_ids=True)
        except ApiError as exc:
            raise ReviewSyncError(f"Label Studio at {self.url} refused the task import "
                                  f"(HTTP {exc.status_code}): {str(exc.body)[:300]}") from exc
        except httpx.HTTPError as exc:
            raise ReviewSyncError(
                f"lost Label Studio at {self.url} during a task import ({type(exc).__name__}); "
                f"start it (`{self.start_hint}`) and rerun: the next push finds what arrived "
                f"and sends the rest without duplicates") from exc
        ids = list(res.task_ids or [])
        if len(ids) != len(tasks):
            raise ReviewSyncError(f"Label Studio created {len(ids)} tasks for {len(tasks)} sent")
        return ids

    def list_tasks(self, project_id: int, filters: list[dict], *, fields: str = "task_only",
                   conjunction: str = "and", page_size: int = 1000) -> list[Any]:
        """Tasks of a project matching Data Manager filters (all pages)."""
        query = _filter(filters, conjunction)
        return self.call("list tasks", lambda: list(self._sdk.tasks.list(
            project=project_id, query=query, fields=fields, page_size=page_size)))

    def tasks_of_batch(self, project_id: int, batch_id: str) -> dict[str, int]:
        """{record_id: task_id} of the tasks a push batch created (oldest task wins)."""
        tasks = self.list_tasks(project_id, [{"filter": "filter:tasks:data.push_batch",
                                              "operator": "equal", "type": "String",
                                              "value": batch_id}])
        out: dict[str, int] = {}
        for t in sorted(tasks, key=lambda t: t.id):
            ext = (t.data or {}).get("ext_id")
            if ext is not None and (t.data or {}).get("push_batch") == batch_id:
                out.setdefault(ext, int(t.id))
        return out

    def tasks_updated_since(self, project_id: int, since: str | None) -> list[dict[str, Any]]:
        """Annotated or skipped tasks changed after `since` (server time); all of them if None.

        Two filtered queries (annotated, skipped) instead of listing the project keep a pull
        independent of the project size. A task whose last annotation was deleted matches
        neither; that removal is noticed only when the task is annotated again.
        """
        merged: dict[int, Any] = {}
        for counter in ("total_annotations", "cancelled_annotations"):
            items = [{"filter": f"filter:tasks:{counter}", "operator": "greater",
                      "type": "Number", "value": 0}]
            if since:
                items.append({"filter": "filter:tasks:updated_at", "operator": "greater",
                              "type": "Datetime", "value": since})
            for t in self.list_tasks(project_id, items, fields="all"):
                merged[int(t.id)] = t
        tasks = list(merged.values())
        out = []
        for t in tasks:
            anns = [a if isinstance(a, dict) else a.dict() for a in (t.annotations or [])]
            out.append({"id": int(t.id), "data": t.data or {}, "annotations": anns,
                        "updated_at": _iso(t.updated_at)})
        return out

    def task_ids(self, project_id: int) -> set[int]:
        """Every task id of the project (slow on large projects; used only on count mismatch)."""
        tasks = self.call("list task ids", lambda: list(self._sdk.tasks.list(
            project=project_id, fields="task_only", page_size=1000, include="id")))
        return {int(t.id) for t in tasks}

    def user_emails(self) -> dict[int, str]:
        if self._users is None:
            users = self.call("list users", lambda: list(self._sdk.users.list()))
            self._users = {int(u.id): (u.email or u.username or str(u.id)) for u in users}
        return self._users

    def annotate(self, task_id: int, result: list[dict], *, was_cancelled: bool = False) -> int:
        """Create an annotation (tests, benchmarks, scripted review)."""
        a = self.call("create an annotation", lambda: self._sdk.annotations.create(
            id=task_id, result=result, was_cancelled=was_cancelled))
        return int(a.id)
