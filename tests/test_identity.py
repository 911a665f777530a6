"""A lasting identity (hwml.serve.identity): page sessions bound to the browser's token, one owner
on a laptop, client addresses only on a Space; runs a restart cut short listed as interrupted
and what resuming them needs (hwml.runs.resume)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from hwml import settings
from hwml.errors import HwmlError
from hwml.runs.resume import is_interrupted, resume_arguments
from hwml.serve.identity import LOCAL_OWNER, Identities, client_address, new_token, valid_token


def test_tokens_are_random_and_checked():
    a, b = new_token(), new_token()
    assert a != b and valid_token(a) and valid_token(b)
    for bad in (None, "", "v-xyz", "../../etc", a + "0", a.upper(), 42):
        assert not valid_token(bad)


def test_a_reload_and_a_second_tab_act_for_the_same_owner():
    ids = Identities(private=True)
    token = ids.bind("page-1", None)  # first visit: the browser had no token
    assert valid_token(token)
    assert ids.bind("page-2", token) == token  # the reload (a new session_hash) sends it back
    assert ids.bind("tab-2", token) == token  # a second tab reads the same local storage
    assert ids.owner("page-1") == ids.owner("page-2") == ids.owner("tab-2") == token
    other = ids.bind("stranger", None)
    assert other != token and ids.owner("stranger") == other
    assert ids.owner("script-session") == "script-session"  # never loaded the page: its own session
    forged = ids.bind("page-3", "../../runs")
    assert forged != "../../runs" and valid_token(forged)  # anything else becomes a fresh token


def test_on_a_laptop_everyone_is_one_owner():
    ids = Identities(private=False)
    ids.bind("page-1", new_token())
    assert ids.owner("page-1") == ids.owner("another") == ids.owner(None) == LOCAL_OWNER


@pytest.mark.parametrize(
    ("env", "private"),
    [
        ({}, False),  # loopback by default
        ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),  # a classroom LAN
        ({"SPACE_ID": "me/hwml"}, True),
        ({"GRADIO_SERVER_NAME": "0.0.0.0", "HWML_PRIVATE_RUNS": "0"}, False),
        ({"HWML_PRIVATE_RUNS": "1"}, True),
    ],
)
def test_private_runs_follow_where_the_server_listens(monkeypatch, env, private):
    for name in ("GRADIO_SERVER_NAME", "SPACE_ID", "HWML_PRIVATE_RUNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings.private_runs() is private


def test_client_address_only_where_the_space_passes_one(monkeypatch):
    request = SimpleNamespace(
        session_hash="x", headers={"x-forwarded-for": "203.0.113.9, 10.0.0.1"}, client=SimpleNamespace(host="10.0.0.1")
    )
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert client_address(request) is None
    monkeypatch.setenv("SPACE_ID", "me/hwml")
    assert client_address(request) == "203.0.113.9"
    assert client_address(SimpleNamespace(headers={}, client=SimpleNamespace(host="10.0.0.5"))) == "10.0.0.5"
    ids = Identities(private=True)
    token = ids.bind("x", None)
    assert ids.visitor(request).owner == token and ids.visitor(request).address == "203.0.113.9"


def write_run(folder, events, finished=False, resume_state=True, data=None):
    folder.mkdir(parents=True)
    config = {"task": "phoneme", "preset": "simple", "finished": finished, "data": {"root": str(data or folder)}}
    config["settings"] = {"seed": 3, "device": "auto", "max_steps": 500, "max_seconds": 60, "lr": 0.01, "hidden": 64}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if resume_state:
        (folder / "resume.safetensors").write_bytes(b"x")
    return folder


def test_a_run_without_its_end_is_interrupted_unless_it_is_live(tmp_path):
    steps = [{"event": "start", "step": 0}, {"event": "step", "step": 10}]
    cut = write_run(tmp_path / "cut", steps)
    stopped = write_run(tmp_path / "stopped", [*steps, {"event": "end", "reason": "stopped"}])
    done = write_run(tmp_path / "done", [*steps, {"event": "end", "reason": "max_steps"}], finished=True)
    torn = write_run(tmp_path / "torn", steps)
    with open(torn / "metrics.jsonl", "a") as f:
        f.write('{"event": "st')  # a kill in the middle of a line
    assert is_interrupted(cut) and is_interrupted(torn)
    assert not is_interrupted(stopped) and not is_interrupted(done)
    assert not is_interrupted(cut, active={cut.resolve()})  # a live job is writing it
    assert not is_interrupted(tmp_path / "empty-starting")


def test_resume_arguments_come_from_the_run_itself(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run = write_run(tmp_path / "cut", [{"event": "start", "step": 0}], data=data)
    args = resume_arguments(run)
    assert args["kind"] == "phoneme" and args["preset"] == "simple" and args["data"] == data
    assert args["seed"] == 3 and args["max_steps"] == 500 and args["max_seconds"] == 60
    assert args["overrides"] == {"lr": 0.01, "hidden": 64}
    early = write_run(tmp_path / "early", [{"event": "start", "step": 0}], resume_state=False, data=data)
    with pytest.raises(HwmlError, match="before its first checkpoint"):
        resume_arguments(early)
    data.rmdir()
    with pytest.raises(HwmlError, match="training data is gone"):
        resume_arguments(run)
