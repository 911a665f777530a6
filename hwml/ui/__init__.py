"""The Gradio app: five tabs wired to hwml functions, one module per tab or panel (`task_tab`:
Train, Evaluate, Predict of a task; `who_is_speaking`, `live_tab`, `runs_tab`, `learn_tab`).

`build_app()` returns the Blocks and the context behind it; `app.py` launches it. The UI only
wires components to hwml: training runs, evaluation, prediction and the lessons all live in
the package, where the CLI uses them too.
"""

from __future__ import annotations

import threading

import gradio as gr

from hwml import settings
from hwml.serve.jobs import JobRegistry
from hwml.serve.workspace import Workspace
from hwml.ui.lang import I18N, L, lang_of, language_switch, localized_tab, wire_language
from hwml.ui.page import AppBlocks, logo_html
from hwml.ui.widgets import CSS, AppContext, identities, run_dropdown_update, session_of

TITLE = "hwml: NTU ML HW2 phonemes & HW4 speakers"


def theme() -> gr.themes.Base:
    """The default look with system fonts: the stock theme would fetch web fonts, and a Space
    or a classroom may have no network."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "SFMono-Regular", "monospace"]
    )


VISITOR_KEY = "hwml-visitor"  # the browser's local storage key of its visitor token
VISITOR_SECRET = "hwml-visitor-v1"  # fixed, so a token outlives a server restart; the token itself is the secret


class AfterIdentify:
    """Stands in for the Blocks where a handler is wired with `.load(...)`: it runs right after
    the page has told the server its visitor token, so it acts for the right owner."""

    def __init__(self, identified, blocks: gr.Blocks):
        self.identified, self.blocks = identified, blocks

    def load(self, fn, inputs=None, outputs=None, **kwargs):
        return self.identified.then(fn, inputs, outputs, **kwargs)

    def unload(self, fn):
        return self.blocks.unload(fn)


_warm = threading.Lock()
_warmed = False


def warm_up(ctx: AppContext) -> None:
    """Once, in the background: import the training, model and plotting modules and load and
    warm the shipped models (hwml.api.preload_runs). `app.py` calls it as soon as the page
    is served (a fast cold start, then no student pays for a load); a page load calls it too."""
    global _warmed
    with _warm:
        if _warmed:
            return
        _warmed = True

    def load():
        import hwml.phoneme.predict  # noqa: F401
        import hwml.phoneme.task  # noqa: F401
        import hwml.runs.confusion  # noqa: F401
        import hwml.speaker.predict  # noqa: F401
        import hwml.speaker.task  # noqa: F401
        import hwml.ui.figures  # noqa: F401
        import hwml.ui.strip_image  # noqa: F401
        from hwml.api import preload_runs

        preload_runs([e.path for e in ctx.workspace.shipped_runs()])

    threading.Thread(target=load, name="hwml-warm-up", daemon=True).start()


def build_app(ctx: AppContext | None = None) -> tuple[gr.Blocks, AppContext]:
    """The whole app (not launched) and its context: workspace and training jobs from the
    environment unless given (tests may pass their own)."""
    from hwml.ui import learn_tab, runs_tab
    from hwml.ui.live_tab import LiveTab
    from hwml.ui.phoneme_predict import PhonemePredictPanel
    from hwml.ui.speaker_predict import SpeakerPredictPanel
    from hwml.ui.task_tab import task_tab
    from hwml.ui.who_is_speaking import WhoIsSpeaking

    ctx = ctx or AppContext(workspace=Workspace.from_env(), jobs=JobRegistry())
    age = settings.upload_cache_seconds()
    with AppBlocks(title=TITLE, analytics_enabled=False, delete_cache=(max(60, age // 4), age)) as demo:
        visitor_token = gr.BrowserState(None, storage_key=VISITOR_KEY, secret=VISITOR_SECRET)

        def identify(token, request: gr.Request):
            """Bind this page to the browser's lasting token (a new one on its first visit)."""
            return identities().bind(getattr(request, "session_hash", None), token)

        loaded = AfterIdentify(
            demo.load(identify, visitor_token, visitor_token, api_visibility="private", queue=False), demo
        )
        with gr.Row(elem_id="hwml-header", equal_height=True):
            gr.HTML(logo_html(), elem_id="hwml-logo", container=False, padding=False, scale=1)
            language, projector = language_switch()
        gr.Markdown(L("app.intro"), elem_id="hwml-intro")
        with gr.Tabs():
            with localized_tab(ctx.localized, "tab.phoneme", id="phoneme"):
                phoneme = task_tab(ctx, "phoneme", PhonemePredictPanel)
            with localized_tab(ctx.localized, "tab.speaker", id="speaker"):
                speaker = task_tab(ctx, "speaker", SpeakerPredictPanel)
                with localized_tab(ctx.localized, "tab.who", id="speaker-who") as who_tab:
                    who = WhoIsSpeaking(ctx)
            with localized_tab(ctx.localized, "tab.live", id="live"):
                LiveTab(ctx, who.roster)
            with localized_tab(ctx.localized, "tab.runs", id="runs") as runs_tab_block:
                runs = runs_tab.RunsTab(ctx)
            with localized_tab(ctx.localized, "tab.learn", id="learn") as learn_tab_block:
                learn = learn_tab.LearnTab(ctx)

        # keep every run picker current: on page load, when a tab opens, and after a run ends
        for kind, parts in (("phoneme", phoneme), ("speaker", speaker)):
            pickers = [parts["evaluate"].run, parts["predict"].run]

            def refresh(a, b, request: gr.Request, kind=kind):
                session = session_of(request)
                lang = lang_of(request)
                return (
                    run_dropdown_update(ctx, session, kind, a, lang),
                    run_dropdown_update(ctx, session, kind, b, lang),
                )

            for trigger in (parts["eval_tab"].select, parts["predict_tab"].select):
                trigger(refresh, pickers, pickers, api_visibility="private", queue=False)
            train = parts["train"]
            train.start_event.then(refresh, pickers, pickers, api_visibility="private", queue=False)
            train.stop_event.then(refresh, pickers, pickers, api_visibility="private", queue=False)
            loaded.load(refresh, pickers, pickers, api_visibility="private", queue=False)
            train.reattach_on(loaded)

        def refresh_learn(current, request: gr.Request):
            return run_dropdown_update(ctx, session_of(request), "phoneme", current, lang_of(request))

        for trigger in (loaded.load, learn_tab_block.select):
            trigger(refresh_learn, learn.align_run, learn.align_run, api_visibility="private", queue=False)
        who.keep_runs_current(loaded, who_tab, speaker["train"])
        runs_tab_block.select(
            runs.list_runs, runs.pick, [runs.table, runs.pick, runs.delete_pick], api_visibility="private"
        )

        for parts in (phoneme, speaker):
            train = parts["train"]
            demo.load(train.preset_choices, train.preset, train.preset, api_visibility="private", queue=False)

        def on_load():
            """The first visitor starts the built-in corpus (cached after that) and the model imports."""
            ctx.workspace.corpus.start()
            warm_up(ctx)

        demo.load(on_load, None, None, api_visibility="private", queue=False)
        # a closed tab leaves its runs going: they belong to the visitor (hwml.serve.identity), who
        # re-attaches on return; each is bounded by its fair share of the time (hwml.serve.fair)
        wire_language(loaded, language, projector, ctx.localized)
        runs.resume_wiring(phoneme["train"], speaker["train"])
    # the disk budget counts Gradio's cache and never prunes what is in use (hwml.serve.disk)
    ctx.workspace.gradio_cache = settings.gradio_cache_dir()
    ctx.workspace.in_use = lambda: ctx.jobs.in_use_paths() | kept_in_cache(demo)
    return demo, ctx


def kept_in_cache(demo: gr.Blocks) -> set:
    """The cached files the page itself shows (examples, default values: Gradio's keep_in_cache)."""
    from pathlib import Path

    kept = set()
    for block in demo.blocks.values():
        kept.update(Path(p).resolve() for p in getattr(block, "keep_in_cache", ()) or ())
    return kept


__all__ = ["build_app", "theme", "warm_up", "CSS", "TITLE", "I18N"]
