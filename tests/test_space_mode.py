"""Space mode: the safety and concurrency checks against a server as a Hugging Face Space runs it
(`SPACE_ID` set, local paths off by default, visitors kept apart: the `space_server` fixture of
tests/conftest.py), and the rules behind it: when local paths are on, and that no message a
visitor sees names a server path (hwml.serve.redact)."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hwml import settings
from hwml.serve.redact import visitor_text

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

BUILTIN = "Built-in corpus"


def train_args(preset: str, max_steps: int, source: str = BUILTIN, path: str = "", upload=None) -> tuple:
    """The phoneme Train panel's inputs in order (tests/test_app_api.py names them)."""
    return (source, "libriphone", path, upload, preset, max_steps, 60, 0, 0, 0, 20, "")


# --- the rules, without a server -------------------------------------------------------------


@pytest.mark.parametrize(
    "env, allowed",
    [
        ({}, True),  # a laptop: loopback, not a Space
        ({"GRADIO_SERVER_NAME": "localhost"}, True),
        ({"GRADIO_SERVER_NAME": "0.0.0.0"}, False),  # a classroom LAN: any visitor could probe the disk
        ({"GRADIO_SERVER_NAME": "192.168.1.20"}, False),
        ({"SPACE_ID": "me/hwml"}, False),
        ({"SPACE_ID": "me/hwml", "GRADIO_SERVER_NAME": "127.0.0.1"}, False),
        ({"GRADIO_SERVER_NAME": "0.0.0.0", "HWML_ALLOW_LOCAL_PATHS": "1"}, True),  # explicitly on
        ({"SPACE_ID": "me/hwml", "HWML_ALLOW_LOCAL_PATHS": "yes"}, True),
        ({"HWML_ALLOW_LOCAL_PATHS": "0"}, False),  # explicitly off on a laptop
        ({"GRADIO_SERVER_NAME": "0.0.0.0", "HWML_ALLOW_LOCAL_PATHS": " "}, False),  # blank: the default
    ],
)
def test_local_paths_are_on_only_on_loopback_off_a_space_or_when_turned_on(monkeypatch, env, allowed):
    for name in ("SPACE_ID", "GRADIO_SERVER_NAME", "HWML_ALLOW_LOCAL_PATHS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings.allow_local_paths() is allowed


RUNS = "/srv/app/runs/sessions/s-0123456789abcdef"


@pytest.mark.parametrize(
    "message, shown",
    [
        (
            f"{RUNS}/uploads/u20260101-120000-3/src/timit_11/train_11.npy: 41 columns",
            "timit_11/train_11.npy: 41 columns",
        ),
        (f"{RUNS}/uploads/u20260101-120000-3/src: no HW2 data found", "your upload: no HW2 data found"),
        (f"{RUNS}/uploads/u20260101-120000-3/imported/spk1/a.wav is empty.", "spk1/a.wav is empty."),
        (
            f"{RUNS}/runs/phoneme-medium-20260101-1/config.json: unreadable",
            "phoneme-medium-20260101-1/config.json: unreadable",
        ),
        (f"{RUNS}/evaluations/shipped-phoneme/model.safetensors", "shipped-phoneme/model.safetensors"),
        ("/tmp/gradio/" + "ab" * 32 + "/my clip.wav: not audio", "my clip.wav: not audio"),
        ("/home/teacher/.cache/hwml/corpus-default: missing", "corpus-default: missing"),
        ("valid/test split 1/2 at https://example.org/x stays", "valid/test split 1/2 at https://example.org/x stays"),
    ],
)
def test_messages_name_files_relative_to_the_visitors_own_upload_or_run(message, shown):
    assert visitor_text(message, local_paths=False) == shown


def test_with_local_paths_on_a_typed_path_is_shown_as_typed():
    assert visitor_text("/data/timit_11: no such folder", local_paths=True) == "/data/timit_11: no such folder"
    assert visitor_text(f"{RUNS}/runs/r1/x.json: bad", local_paths=True) == "r1/x.json: bad"


# --- a server in Space mode ------------------------------------------------------------------


def server_paths(server) -> list[str]:
    """Strings that must never reach a visitor: the server's folders."""
    root = server.runs_dir.parent
    return [str(root), "/sessions/", "/uploads/", str(Path.home())]


def assert_no_server_path(text: str, server) -> None:
    leaked = [p for p in server_paths(server) if p in text]
    assert not leaked, f"server path {leaked} in a visitor's message: {text!r}"


@pytest.fixture(scope="module")
def client(space_server):
    return Client(space_server.url, verbose=False)


@pytest.fixture(scope="module")
def phoneme_run(client):
    out = client.predict(*train_args("logreg", 30), api_name="/phoneme_train")
    assert out[4]["state"] == "finished", out[4]
    return out[4]["run"]


def test_a_space_refuses_server_folder_paths_and_names_none(space_server, client, phoneme_run):
    # the path choice is not even offered (Gradio refuses a value outside the radio's choices); the
    # audio source takes a zip only, a typed path is refused by hwml.serve.sources
    for source in ("Course folder on this machine", "Your audio folder (zip or path)"):
        with pytest.raises(AppError, match="turned off|not in the list of choices") as e:
            client.predict(
                *train_args("logreg", 5, source=source, path=str(space_server.runs_dir)), api_name="/phoneme_train"
            )
        assert_no_server_path(str(e.value), space_server)
    with pytest.raises(AppError, match="turned off|not in the list of choices"):
        client.predict(
            f"run:{phoneme_run}", "Course folder on this machine", "/etc", None, "test", api_name="/phoneme_evaluate"
        )


def test_hostile_and_wrong_uploads_are_one_line_messages_without_server_paths(
    space_server, client, phoneme_run, tmp_path
):
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as zf:
        zf.writestr("timit_11/train_11.npy", b"\x93NUMPY")
        zf.writestr("../../escape.txt", b"pwned")
    nothing = tmp_path / "nothing.zip"
    with zipfile.ZipFile(nothing, "w") as zf:
        zf.writestr("notes/readme.txt", b"no course data here")
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((5, 41), np.float32))
    messages = []
    for upload, words in ((escape, "outside the folder"), (nothing, "notes: not a course data folder")):
        with pytest.raises(AppError, match=words) as e:
            client.predict(
                *train_args("logreg", 5, source="Course folder (zip upload)", upload=handle_file(str(upload))),
                api_name="/phoneme_train",
            )
        messages.append(str(e.value))
    with pytest.raises(AppError, match="41 columns") as e:
        client.predict(f"run:{phoneme_run}", [handle_file(str(wide))], api_name="/phoneme_predict_files")
    messages.append(str(e.value))
    assert "wide.npy" in messages[-1]
    for message in messages:
        assert "Traceback" not in message and "\n" not in message.strip()
        assert_no_server_path(message, space_server)
    assert not list(space_server.runs_dir.parent.rglob("escape.txt"))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((9, 39), np.float32))
    assert (
        "9 frames"
        in client.predict(f"run:{phoneme_run}", [handle_file(str(good))], api_name="/phoneme_predict_files")[0]
    )


def test_a_space_serves_concurrent_visitors_and_keeps_them_apart(space_server, client, phoneme_run, tmp_path):
    feats = tmp_path / "feats.npy"
    np.save(feats, np.random.default_rng(0).standard_normal((40, 39)).astype(np.float32))
    others = [Client(space_server.url, verbose=False) for _ in range(3)]
    for other in others:  # another visitor sees neither the run nor a way to it
        with pytest.raises(AppError, match="not one of your runs"):
            other.predict(f"run:{phoneme_run}", [handle_file(str(feats))], api_name="/phoneme_predict_files")
    results, errors = [], []

    def predict():
        try:
            results.append(
                client.predict(f"run:{phoneme_run}", [handle_file(str(feats))], api_name="/phoneme_predict_files")[0]
            )
        except Exception as exc:  # noqa: BLE001 - counted: the assertion names it
            errors.append(repr(exc))

    threads = [threading.Thread(target=predict) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 8 and len(set(results)) == 1


def test_a_space_counts_trainings_per_client_address(space_server):
    """Four visitors behind one address (the Space's X-Forwarded-For): three may queue or run, the
    fourth is told to wait; each visitor still has one at a time."""
    headers = {"X-Forwarded-For": "203.0.113.7"}
    clients = [Client(space_server.url, verbose=False, headers=headers) for _ in range(4)]
    jobs = [c.submit(*train_args("logreg", 400), api_name="/phoneme_train") for c in clients[:3]]
    for job in jobs:  # each has its place (queued or running) before the fourth asks
        for _ in job:
            break
    before = sorted(space_server.runs_dir.glob("sessions/*/*/*"))
    with pytest.raises(AppError, match="network address") as e:
        clients[3].predict(*train_args("logreg", 5), api_name="/phoneme_train")
    assert_no_server_path(str(e.value), space_server)
    assert sorted(space_server.runs_dir.glob("sessions/*/*/*")) == before  # a refused run leaves no folder
    with pytest.raises(AppError, match="still going"):
        clients[0].predict(*train_args("logreg", 5), api_name="/phoneme_train")
    for c in clients[:3]:
        c.predict(api_name="/phoneme_stop")
    for job in jobs:
        try:
            job.result(timeout=120)
        except Exception:  # noqa: BLE001 - a cancelled stream: the run itself stopped
            pass


def test_evaluating_on_an_uploaded_zip_leaves_no_extraction_behind(
    space_server, client, phoneme_run, small_corpus, tmp_path
):
    course = tmp_path / "libriphone.zip"
    with zipfile.ZipFile(course, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted((small_corpus / "libriphone").rglob("*")):
            if file.is_file():
                zf.write(file, Path("libriphone") / file.relative_to(small_corpus / "libriphone"))
    before = sorted(space_server.runs_dir.glob("sessions/*/uploads/*"))
    summary = client.predict(
        f"run:{phoneme_run}",
        "Course folder (zip upload)",
        "",
        handle_file(str(course)),
        "test",
        api_name="/phoneme_evaluate",
    )[0]
    assert "%" in summary
    assert_no_server_path(summary, space_server)
    assert sorted(space_server.runs_dir.glob("sessions/*/uploads/*")) == before


def test_a_request_with_too_many_files_is_refused_in_one_line_before_any_is_read(
    space_server, client, phoneme_run, tmp_path
):
    files = []
    for i in range(6):  # the fixture allows 5 (HWML_MAX_REQUEST_FILES)
        path = tmp_path / f"f{i}.npy"
        np.save(path, np.zeros((4, 39), np.float32))
        files.append(handle_file(str(path)))
    with pytest.raises(AppError, match="6 files in one request, over the limit of 5") as e:
        client.predict(f"run:{phoneme_run}", files, api_name="/phoneme_predict_files")
    assert "\n" not in str(e.value).strip()
    assert (
        "5 file(s), 20 frames" in client.predict(f"run:{phoneme_run}", files[:5], api_name="/phoneme_predict_files")[0]
    )


def test_a_json_file_over_the_limit_is_refused_by_its_size_unread(monkeypatch, tmp_path):
    from hwml.errors import HwmlError
    from hwml.safeio import read_json
    from hwml.speaker.identify import load_enrollments

    monkeypatch.setenv("HWML_MAX_JSON_MB", str(1 / 1024))  # 1 KiB
    big = tmp_path / "speakers.json"
    big.write_text("{" + " " * 4096)  # not even JSON: a parse would say so; the size check comes first
    for read in (read_json, load_enrollments):
        with pytest.raises(HwmlError, match="over the .* limit for a JSON file .*refused unread"):
            read(big)
    small = tmp_path / "ok.json"
    small.write_text('{"a": 1}')
    assert read_json(small) == {"a": 1}
