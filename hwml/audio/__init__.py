"""Audio in, features out: the one place hwml turns sound into the course's features.

- `decode`: audio files and recordings -> a mono float32 wave at 16 kHz (`AUDIO_SUFFIXES`: the one
  list of audio file types every importer and predictor accepts)
- `params`: `FeatureParams` (stored in every dataset and checkpoint), `MFCC39` (HW2), `LOGMEL40` (HW4)
- `features`: `mfcc39`, `logmel40`, `featurize`
- `frames`: frame times, frame labels from phone segments, context windows, label runs as segments

The built-in corpus, the importers and inference (uploads, the microphone) all call `featurize`
with the `FeatureParams` stored beside the data or in the checkpoint, so training and test
features cannot drift apart.
"""
