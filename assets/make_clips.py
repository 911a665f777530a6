"""Re-make assets/clips/ (the app's example clips) from the real speech beside the repository.

    python assets/make_clips.py [--shared ../shared/data]

Copies a few utterances of speechocean762 (Apache-2.0) and of the Free Spoken Digit Dataset
(CC BY-SA 4.0) as 16 kHz mono 16-bit FLAC: small enough to ship, enough to try every panel of
"Who is speaking?" without a microphone. assets/README.md credits them and lists the files.
The app and the tests read only the copies in assets/clips/, never the sources.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (file in assets/clips, source path under the shared data folder)
CLIPS = [
    ("woman-0036_1.flac", "speechocean762/wav/0036/000360034.flac"),
    ("woman-0036_2.flac", "speechocean762/wav/0036/000360132.flac"),
    ("woman-0036_3.flac", "speechocean762/wav/0036/000360190.flac"),
    ("man-0482_1.flac", "speechocean762/wav/0482/004820015.flac"),
    ("man-0482_2.flac", "speechocean762/wav/0482/004820041.flac"),
    ("man-0482_3.flac", "speechocean762/wav/0482/004820119.flac"),
    ("girl-0006_1.flac", "speechocean762/wav/0006/000060015.flac"),
    ("girl-0006_2.flac", "speechocean762/wav/0006/000060020.flac"),
    ("girl-0006_3.flac", "speechocean762/wav/0006/000060081.flac"),
    ("george_1.flac", "fsdd/recordings/3_george_0.wav"),
    ("george_2.flac", "fsdd/recordings/7_george_1.wav"),
    ("george_3.flac", "fsdd/recordings/5_george_2.wav"),
    ("jackson_1.flac", "fsdd/recordings/3_jackson_0.wav"),
    ("jackson_2.flac", "fsdd/recordings/7_jackson_1.wav"),
    ("jackson_3.flac", "fsdd/recordings/5_jackson_2.wav"),
]


def main() -> None:
    import numpy as np
    import soundfile as sf

    from hwml.audio.decode import load_audio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    out = ROOT / "assets" / "clips"
    out.mkdir(parents=True, exist_ok=True)
    for name, src in CLIPS:
        wave = load_audio(args.shared / src).numpy()  # 16 kHz mono float32
        wave = wave / max(1.0, float(np.abs(wave).max()))  # no clipping in 16-bit
        sf.write(out / name, wave, 16000, format="FLAC", subtype="PCM_16")
        print(f"{name}\t{len(wave) / 16000:.1f} s\t{(out / name).stat().st_size // 1024} KB\t{src}")


if __name__ == "__main__":
    main()
