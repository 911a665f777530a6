"""The Learn tab's live examples, one module per section: every number a lesson shows is computed
here, on the spot, and the UI only lays the results out.

- `formats`: what a course folder holds, file by file
- `features`: a sentence spoken by eSpeak NG, its waveform, spectrogram, log-mel and MFCC
- `alignment`: from transcripts to frame labels (a built-in sentence aligned, scored against
  eSpeak's exact phones)
- `presets`: what each preset changes relative to `simple`, and why
- `lecture2`: generative vs discriminative (Lecture 2's Gaussian classifier, logistic regression)
- `pitfalls`: each defect of the course's sample code run next to hwml's fix

Torch is imported inside the functions, so the app's page (which lists the lessons) builds
without loading it.
"""
