"""hwml: NTU ML HW2 (phoneme) and HW4 (speaker) classification, done properly."""

__version__ = "0.1.0"
