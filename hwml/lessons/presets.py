"""What each preset changes relative to `simple`, and why (the notes are catalogue keys of the
task's presets module: hwml/i18n)."""

from __future__ import annotations

from hwml.i18n import t


def preset_table(kind: str, lang: str = "en") -> list[dict]:
    """Each preset of a task: what it changes relative to `simple`, and why."""
    from hwml.api import task_presets

    module = task_presets(kind)
    presets = module.PRESETS
    base = presets.get("simple", {})
    rows = []
    for name, settings in presets.items():
        changed = {k: v for k, v in settings.items() if base.get(k, object()) != v} if name != "simple" else settings
        note = module.NOTES.get(name)
        rows.append(
            {
                t("col.preset", lang): name,
                t("col.why", lang): t(note, lang) if note else "",
                t("col.settings", lang): ", ".join(f"{k}={v}" for k, v in changed.items()) or "-",
            }
        )
    return rows
