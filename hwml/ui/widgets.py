"""Pieces every tab uses: the app context, user-error handling, run pickers, curve tables.

Only presentation lives here: turning hwml results into what Gradio components display.
"""

from __future__ import annotations

import functools
import html
import inspect
from dataclasses import dataclass, field

import gradio as gr
import pandas as pd

from hwml.errors import HwmlError
from hwml.i18n import t
from hwml.serve.identity import Identities, Visitor
from hwml.serve.jobs import JobRegistry, JobView, format_duration
from hwml.serve.redact import visitor_text
from hwml.serve.workspace import Workspace
from hwml.ui.lang import L, Localized, lang_of, reset_language, tr, use_language_of
from hwml.ui.page import stylesheet


@dataclass
class AppContext:
    """What every tab needs: where files live, and the training runs in flight."""

    workspace: Workspace
    jobs: JobRegistry
    localized: Localized = field(default_factory=Localized)  # server-drawn texts redrawn per language


_identities: Identities | None = None


def identities() -> Identities:
    """The app's page-session -> visitor-token table (hwml.serve.identity), made on first use."""
    global _identities
    if _identities is None:
        _identities = Identities()
    return _identities


def session_of(request: gr.Request | None) -> str:
    """The owner a call acts for: the browser's lasting token once its page has loaded (the same
    in every tab and after a reload), else the page session (a gradio_client script); one
    owner for everyone on a laptop (hwml.serve.identity)."""
    return identities().owner(getattr(request, "session_hash", None))


def visitor_of(request: gr.Request | None) -> Visitor:
    """The owner and, on a Space, the client address (the fair-share limits count both)."""
    return identities().visitor(request)


def ui_error(request: gr.Request | None, key: str, **values) -> HwmlError:
    """A mistake the page itself names, in the session's language (raise it)."""
    exc = HwmlError(tr(request, key, **values))
    exc.translated = True
    return exc


def shown_error(exc: HwmlError, args=(), kwargs=None) -> str:
    """What the page shows for an HwmlError: the UI's own messages are already in the session's
    language; the package's (one technical line naming a file and the problem, shared with the
    CLI) keep their English words behind a translated lead-in."""
    message = visitor_text(str(exc))  # no server path: names relative to the visitor's upload or run
    if getattr(exc, "translated", False):
        return message
    request = next((a for a in (*args, *(kwargs or {}).values()) if isinstance(a, gr.Request)), None)
    lang = lang_of(request) if request is not None else "en"
    return message if lang == "en" else tr(request, "error.package", message=message)


def user_errors(fn):
    """Show an HwmlError as a visible message (gr.Error), not a red traceback; the session goes on."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except HwmlError as exc:
                raise gr.Error(shown_error(exc, args, kwargs), print_exception=False) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        request = next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)
        token = use_language_of(request)  # current_lang() for helpers without the request
        try:
            return fn(*args, **kwargs)
        except HwmlError as exc:
            raise gr.Error(shown_error(exc, args, kwargs), print_exception=False) from None
        finally:
            reset_language(token)

    return wrapper


def check_request_files(files) -> list:
    """The files of one request, refused (one line) past `HWML_MAX_REQUEST_FILES` before any is
    read: each may be HWML_MAX_UPLOAD_MB, so their number bounds the request's disk and memory."""
    from hwml.settings import max_request_files

    files = [f for f in (files or []) if f]
    limit = max_request_files()
    if len(files) > limit:
        raise HwmlError(
            f"{len(files)} files in one request, over the limit of {limit}: "
            "send fewer, or a zip of a course test folder (one file)"
        )
    return files


# --------------------------------------------------------------------------------------- runs


def run_choices(ctx: AppContext, session: str, kind: str | None, lang: str = "en") -> list[tuple[str, str]]:
    """(label, key) of every run this session may pick for a task: its own first, then shipped."""
    return [(e.label_for(lang), e.key) for e in ctx.workspace.visible_runs(session, kind)]


def shipped_choices(ctx: AppContext, kind: str | None, lang: str = "en") -> list[tuple[str, str]]:
    """The runs everyone sees (before a session is known, e.g. when the page is built)."""
    return [(e.label_for(lang), e.key) for e in ctx.workspace.shipped_runs(kind)]


def run_dropdown_update(ctx: AppContext, session: str, kind: str | None, keep: str | None = None, lang: str = "en"):
    """Refresh a run dropdown's choices, keeping the current pick when it still exists."""
    choices = run_choices(ctx, session, kind, lang)
    keys = [k for _, k in choices]
    value = keep if keep in keys else (keys[0] if keys else None)
    return gr.update(choices=choices, value=value)


def run_picker(ctx: AppContext, kind: str | None, elem_id: str) -> gr.Dropdown:
    """A run dropdown (shipped runs until the session is known) with a refresh button beside it."""
    with gr.Row():
        run = gr.Dropdown(
            shipped_choices(ctx, kind), label=L("ui.run"), allow_custom_value=True, scale=4, elem_id=elem_id
        )
        refresh = gr.Button("↻", scale=1, min_width=40)

    def refresh_runs(current, request: gr.Request):
        return run_dropdown_update(ctx, session_of(request), kind, current, lang_of(request))

    refresh.click(refresh_runs, run, run, api_visibility="private", queue=False)
    ctx.localized.add(
        run, lambda lang, request: run_dropdown_update(ctx, session_of(request), kind, None, lang), with_request=True
    )
    return run


def task_run(ctx: AppContext, session: str, run_key: str | None, kind: str):
    """The picked run, checked to be a `kind` run this session may use."""
    entry = ctx.workspace.find_run(session, run_key)
    if entry.task not in (None, kind):
        raise HwmlError(f"{entry.path.name} is a {entry.task} run, not a {kind} run")
    return entry


NO_RUNS_NOTE = L("ui.no_runs_note")


# --------------------------------------------------------------------------------------- curves

LOSS_COLUMNS = ("step", "value", "series")


TRAIN_COLORS = {"train loss": "#2563eb", "valid loss": "#f97316", "train acc": "#2563eb", "valid acc": "#f97316"}


def series_colors(names) -> dict[str, str]:
    """A colour for each series name. Gradio's LinePlot keeps the colour domain of its first
    draw, so a plot is given every series it will ever show up front: these colours, and a
    placeholder point each (with_all_series)."""
    palette = [
        "#2563eb",
        "#f97316",
        "#16a34a",
        "#dc2626",
        "#9333ea",
        "#0891b2",
        "#ca8a04",
        "#db2777",
        "#4b5563",
        "#65a30d",
    ]
    return {name: TRAIN_COLORS.get(name, palette[i % len(palette)]) for i, name in enumerate(dict.fromkeys(names))}


def with_all_series(frame: pd.DataFrame, names) -> pd.DataFrame:
    """Add an empty (NaN) point for each series not drawn yet, so the plot's colour domain holds
    every series from the first draw on (the valid curve appears later than the train curve)."""
    missing = [n for n in names if n not in set(frame["series"])]
    if not missing:
        return frame
    pad = pd.DataFrame({"step": [0] * len(missing), "value": [float("nan")] * len(missing), "series": missing})
    return pd.concat([frame, pad], ignore_index=True) if len(frame) else pad


def curve_frames(events: list[dict], run: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(loss, accuracy) tables for gr.LinePlot from engine events: one row per point, `series`
    naming train/valid (prefixed by the run's name when several runs share a plot)."""
    loss_rows, acc_rows = [], []
    prefix = f"{run} · " if run else ""
    names = {k: prefix + k for k in TRAIN_COLORS}
    for e in events:
        kind = e.get("event")
        if kind == "step" and e.get("loss") is not None:
            loss_rows.append((e["step"], float(e["loss"]), names["train loss"]))
            acc_rows.append((e["step"], float(e["acc"]), names["train acc"]))
        elif kind == "valid" and e.get("valid_loss") is not None:
            loss_rows.append((e["step"], float(e["valid_loss"]), names["valid loss"]))
            acc_rows.append((e["step"], float(e["valid_acc"]), names["valid acc"]))
    return (pd.DataFrame(loss_rows, columns=list(LOSS_COLUMNS)), pd.DataFrame(acc_rows, columns=list(LOSS_COLUMNS)))


def empty_curves() -> pd.DataFrame:
    return pd.DataFrame(
        {"step": pd.Series(dtype="int64"), "value": pd.Series(dtype="float64"), "series": pd.Series(dtype="object")}
    )


def progress_html(view: JobView | None, lang: str = "en") -> str:
    """A progress bar with step count, throughput and ETA."""
    if view is None:
        return (
            "<div class='hwml-progress'><div class='hwml-bar'><div style='width:0%'></div></div>"
            f"<span>{html.escape(t('progress.not_started', lang))}</span></div>"
        )
    pct = max(0.0, min(1.0, view.fraction)) * 100
    parts = [t("progress.step", lang, step=view.step) + (f" / {view.max_steps}" if view.max_steps else "")]
    if view.units_per_s:
        parts.append(
            t(
                "progress.rate",
                lang,
                rate=f"{view.units_per_s:,.0f}",
                unit=t(f"unit.{view.unit}", lang) if view.unit in ("frames", "utterances") else view.unit,
            )
        )
    parts.append(t("progress.elapsed", lang, time=format_duration(view.elapsed_s)))
    if view.eta_s is not None:
        parts.append(t("progress.eta", lang, time=format_duration(view.eta_s)))
    if view.best_valid_acc is not None:
        parts.append(t("progress.best", lang, acc=f"{view.best_valid_acc:.1%}"))
    return (
        f"<div class='hwml-progress' data-state='{html.escape(view.state)}' data-step='{view.step}'>"
        f"<div class='hwml-bar'><div style='width:{pct:.1f}%'></div></div>"
        f"<span>{pct:.0f}% · {' · '.join(parts)}</span></div>"
    )


STATES = ("queued", "preparing", "running", "finished", "stopped", "failed")


def status_markdown(view: JobView, lang: str = "en") -> str:
    """The run's state and message; the state word stays English too in brackets (tests and the
    API read it), the message is the package's (a training log line) unless it is a known one."""
    name = view.run_dir.rsplit("/", 1)[-1]
    state = t(f"state.{view.state}", lang) if view.state in STATES else view.state
    if lang != "en" and view.state in STATES:
        state = f"{state} ({view.state})"
    return t("status.line", lang, state=state, run=name, message=job_message(view.message, lang))


def job_message(message: str, lang: str) -> str:
    """hwml.serve.jobs' usual lines in the session's language; anything else (an error) as it
    is, less its server paths (hwml.serve.redact)."""
    message = visitor_text(message)
    if lang == "en" or not message:
        return message
    import re

    known = {
        "waiting for a training slot": "job.waiting",
        "preparing the data": "job.preparing",
        "training": "job.training",
    }
    if message in known:
        return t(known[message], lang)
    if m := re.fullmatch(r"waiting for a training slot: number (\d+) in the queue", message):
        return t("job.queue", lang, n=m.group(1))
    if m := re.fullmatch(r"waiting for a training slot: number (\d+) in the queue, about (\S+)", message):
        return t("job.queue_wait", lang, n=m.group(1), wait=m.group(2))
    if message == "stopped while preparing the data":
        return t("job.prep_stopped", lang)
    if m := re.fullmatch(r"done after (\d+) steps?: (.*?)(?:; best validation accuracy ([\d.]+%))?", message):
        reasons = {
            "reached the step limit": "job.reason.max_steps",
            "reached the time limit": "job.reason.max_seconds",
            "stopped early (no more validation gains)": "job.reason.early_stop",
            "stopped by you": "job.reason.stopped",
            "reached its fair share of the time while others waited": "job.reason.share",
        }
        why = t(reasons[m.group(2)], lang) if m.group(2) in reasons else m.group(2)
        best = t("job.best", lang, acc=m.group(3)) if m.group(3) else ""
        return t("job.done", lang, steps=m.group(1), why=why, best=best)
    return message


def latest_event(view: JobView) -> dict:
    """The newest engine event plus where the run stands (what the API's JSON output carries)."""
    event = dict(view.events[-1]) if view.events else {}
    return {
        "state": view.state,
        "run": view.run_dir.rsplit("/", 1)[-1],
        "step": view.step,
        "queue_position": view.position,
        "message": visitor_text(view.message),
        "event": event,
    }


CSS = stylesheet()  # assets/style.css
