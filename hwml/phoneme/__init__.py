"""HW2, phoneme classification: every 10 ms frame of MFCC features -> one of the phone classes.

- `presets`: the presets (simple, medium, strong, boss, and Lecture 2's gaussian and logreg), the
  settings each model takes, the catalogue keys of their notes (torch-free: the UI and CLI read it)
- `batches`: frames gathered by index tensors: context windows, utterance chunks, utterance batches
- `split`: which utterances validate (whole speakers, whole utterances, or timit_11's blocks)
- `task`: the training engine's Task (`make_task`)
- `predict`: logits of a split, prediction on feature files, audio or a course test folder

The same module names, with the same functions, make up `hwml.speaker` (see hwml/DESIGN.md).
"""
