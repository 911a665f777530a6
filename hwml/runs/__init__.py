"""Run folders: what a training run leaves behind, how it is read back, and the loaded models.

- `folder`: the file names, `read_config`, `read_metrics`, listing and deleting runs (torch-free)
- `checkpoint`: `save_checkpoint` (best weights + config.json), `load_run` -> (model, config)
- `resume`: the resume state (tensors + counters in one safetensors file, a readable JSON copy)
- `cache`: `loaded_run`, the one in-memory cache of loaded models (predictions, enrolment)
- `confusion`: `confusion.csv` / `confusion.png` and the summaries read from them

A run folder holds `config.json` (everything needed to rebuild the model: task, preset, model
spec, class names, feature parameters, data source, split, settings), `model.safetensors` (the
best weights), `metrics.jsonl` (the event stream), the resume state (`resume.safetensors` +
`resume.json`: tensors and JSON, never pickles) and, after evaluate, `confusion.csv` /
`confusion.png`. Every file is written atomically (temp file + rename), so a crash or a cancel
never leaves half a file.
"""
