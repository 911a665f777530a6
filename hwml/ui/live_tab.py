"""The Live tab: the microphone streams, phones fill in under a scrolling spectrogram, and the name
of whoever is speaking shows beside it (hwml.serve.live computes everything; this module wires).

Gradio's streaming gr.Audio sends a chunk every STREAM_EVERY seconds to the `stream` event; the
stream's LiveSession lives in a gr.State (closed and dropped when recording stops, when the
browser goes away, or after STATE_SECONDS without use). The picture is a JPEG inlined in HTML:
no file per chunk piles up on the server.
"""

from __future__ import annotations

import base64
import io

import gradio as gr

from hwml.errors import HwmlError
from hwml.i18n import t
from hwml.serve import live
from hwml.ui.lang import L, lang_of
from hwml.ui.widgets import AppContext, run_picker, session_of, task_run, user_errors

STREAM_EVERY = 0.25  # seconds of audio per chunk (README: Live measures what a chunk costs)
TIME_LIMIT = 300  # seconds one recording may stream before Gradio ends it (a class shares the cores)
CONCURRENCY = 8  # chunks processed at once, all streams together
STATE_SECONDS = 600  # a stream's state is dropped after this long unused (a stalled or closed tab)


def picture_html(update: live.LiveUpdate, lang: str) -> str:
    """The spectrogram and its phone strip (hwml.ui.strip_image) as an inline JPEG."""
    from PIL import Image

    from hwml.ui.strip_image import phone_strips_image

    if not len(update.times):
        return ""
    start = float(update.times[0]) - 0.01
    times = (update.times - start).numpy()
    segments = [(a - start, b - start, p) for a, b, p in update.segments]
    image = phone_strips_image(times, update.logmel.numpy(), [(t("live.strip_name", lang), segments)])
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=80)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img id="live-strip-image" alt="" style="width:100%" src="data:image/jpeg;base64,{data}">'


def status_words(update: live.LiveUpdate, lang: str) -> str:
    text = t("live.status", lang, seconds=f"{update.seconds:.1f}", phones=len(update.segments))
    return text + (t("live.dropped", lang, why=update.dropped) if update.dropped else "")


def close_session(session) -> None:
    """gr.State's delete callback: a stream whose tab went away lets go of its state."""
    if isinstance(session, live.LiveSession) and not session.closed:
        session.close()


class LiveTab:
    """Run pickers as in Predict, the streaming microphone, the picture, who is speaking."""

    def __init__(self, ctx: AppContext, roster: gr.State):
        self.ctx = ctx
        gr.Markdown(L("live.intro"))
        with gr.Row():
            with gr.Column():
                gr.Markdown(L("live.phoneme_run"))
                self.phoneme_run = run_picker(ctx, "phoneme", "live-phoneme-run")
            with gr.Column():
                gr.Markdown(L("live.speaker_run"))
                self.speaker_run = run_picker(ctx, "speaker", "live-speaker-run")
        self.mic = gr.Audio(
            sources=["microphone"], streaming=True, type="numpy", label=L("live.mic"), elem_id="live-mic"
        )
        self.who = gr.Markdown(L("live.who.listening"), elem_id="live-who")
        self.picture = gr.HTML("", elem_id="live-strip")
        self.status = gr.Markdown("", elem_id="live-status")
        self.session = gr.State(None, time_to_live=STATE_SECONDS, delete_callback=close_session)
        inputs = [self.mic, self.session, self.phoneme_run, self.speaker_run, roster]
        outputs = [self.session, self.picture, self.who, self.status]
        self.mic.stream(
            self.chunk,
            inputs,
            outputs,
            stream_every=STREAM_EVERY,
            time_limit=TIME_LIMIT,
            concurrency_limit=CONCURRENCY,
            concurrency_id="live",
            api_name="live_stream",
            show_progress="hidden",
        )
        self.mic.stop_recording(self.stop, [self.session], outputs, api_visibility="private")
        # the same handler for API clients (gradio_client cannot drive a stream event): one chunk a
        # call as an audio file, the stream's state kept by the client's session; bench/bench_live.py
        self.api_chunk = gr.Button(visible=False)
        self.api_chunk.click(
            self.chunk,
            inputs,
            outputs,
            concurrency_limit=CONCURRENCY,
            concurrency_id="live",
            api_name="live_chunk",
            show_progress="hidden",
        )
        self.api_chunk.click(self.stop, [self.session], outputs, api_name="live_stop", queue=False)

    def _open(self, phoneme_key, speaker_key, roster, request) -> live.LiveSession:
        session = session_of(request)
        phoneme = task_run(self.ctx, session, phoneme_key, "phoneme").path if phoneme_key else None
        speaker = task_run(self.ctx, session, speaker_key, "speaker").path if speaker_key else None
        opened = live.open_live(phoneme, speaker, roster)
        opened.keys = (phoneme_key, speaker_key, id(roster))
        return opened

    @user_errors
    def chunk(self, audio, session, phoneme_key, speaker_key, roster, request: gr.Request):
        """One chunk: open the stream's session when needed (first chunk, other runs or people)."""
        lang = lang_of(request)
        if audio is None:
            return session, gr.update(), gr.update(), gr.update()
        if (
            session is None
            or session.closed
            or getattr(session, "keys", None)
            != (
                phoneme_key,
                speaker_key,
                id(roster),
            )
        ):
            session = self._open(phoneme_key, speaker_key, roster, request)
        update = session.feed(audio)
        return session, picture_html(update, lang), live.who_words(update.who, lang), status_words(update, lang)

    def stop(self, session, request: gr.Request):
        """Recording stopped: the last frames are labelled, then the state is let go."""
        lang = lang_of(request)
        if not isinstance(session, live.LiveSession):
            return None, gr.update(), gr.update(), gr.update()
        try:
            update = session.close()
        except HwmlError:
            return None, gr.update(), gr.update(), gr.update()
        return None, picture_html(update, lang), live.who_words(update.who, lang), status_words(update, lang)
