"""No server path in what a visitor sees: messages name files relative to the visitor's own upload or run.

The package's errors name files by their full path (right for the CLI, where the path is the
user's own). In the app those paths are the server's: `<runs>/sessions/s-.../uploads/u.../src/
timit_11/train_11.npy` tells a stranger where the server keeps its files, whose folder it is and
nothing useful. `visitor_text` rewrites every absolute path in a message:

- inside a visitor's folder (`sessions/<s>/runs|uploads|evaluations/...`): the part below it, an
  upload's own folder and its `src/` or `imported/` level dropped (`timit_11/train_11.npy`, the
  zip's own member; `phoneme-medium-.../config.json`, the run's file);
- inside Gradio's upload cache (`.../gradio/<hash>/name.wav`): the file's name as uploaded;
- anything else: its last component when local paths are off (a shared server), as it is when
  they are on (the visitor typed it on their own machine).
"""

from __future__ import annotations

import re

from hwml import settings

# an absolute POSIX path: starts with "/" not preceded by a word character, a dot or another path
# character (so "1/2", "train/valid" and URLs stay), ends at white space, quotes or punctuation
ABSOLUTE_PATH = re.compile(r"(?<![\w./:~-])/[^\s'\"`,;:()\[\]{}<>|]+")
VISITOR_FOLDER = re.compile(r"/sessions/s-[0-9a-f]{16}/(runs|uploads|evaluations)/(.+)$")
GRADIO_UPLOAD = re.compile(r"/gradio/[0-9a-f]{16,}/(.+)$")
UPLOAD_LEVELS = ("src", "imported")  # hwml.serve.sources' sub-folders of one upload


def visitor_path(path: str, local_paths: bool | None = None) -> str:
    """One server path as the visitor may see it (rules in the module docstring)."""
    trailing = ""
    while path and path[-1] in ".!?":
        path, trailing = path[:-1], path[-1] + trailing
    if m := VISITOR_FOLDER.search(path):
        group, rest = m.group(1), m.group(2).split("/")
        if group == "uploads":
            rest = rest[1:]  # the upload's own folder (u<time>-<n>)
            if rest and rest[0] in UPLOAD_LEVELS:
                rest = rest[1:]
        return ("/".join(rest) or "your upload") + trailing
    if m := GRADIO_UPLOAD.search(path):
        return m.group(1).rsplit("/", 1)[-1] + trailing
    if local_paths is None:
        local_paths = settings.allow_local_paths()
    if local_paths:
        return path + trailing
    return (path.rstrip("/").rsplit("/", 1)[-1] or "/") + trailing


def visitor_text(text: str | None, local_paths: bool | None = None) -> str | None:
    """`text` with every absolute server path rewritten by `visitor_path`."""
    if not text or "/" not in text:
        return text
    if local_paths is None:
        local_paths = settings.allow_local_paths()
    return ABSOLUTE_PATH.sub(lambda m: visitor_path(m.group(0), local_paths), text)
