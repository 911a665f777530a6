"""HW4, speaker classification: an utterance of 40-dim log-mel frames -> one of N speakers; and, on
any trained run, speakers it never heard (enrolment, identification, verification).

The same modules as `hwml.phoneme`: `presets` (torch-free), `split`, `batches`, `task`, `predict`;
then `augment` (log-mel crop augmentations), `inference` (whole utterances on parallel threads,
embeddings), `verification` (equal-error threshold), `scoring` (centring, cohort score
normalisation, multi-crop, thresholds calibrated on held-out speakers), `identify` (enrol /
identify / verify), `voice_map` (a 2-D picture of voices).

Data stay in one (total_T, 40) tensor with offsets (`UtteranceSet`). Validation, evaluation,
prediction and embeddings all run on whole utterances: sorted by length, batched to a frame
budget, long ones cut into half-overlapping windows whose scores (or embeddings) are averaged.
"""
