"""Log-mel crop augmentations (hwml.speaker.augment): what each does to real frames, and never to padding."""

import math

import pytest
import torch

from hwml.speaker.augment import random_level, random_noise, spec_augment

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _crops():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 40, 40, generator=gen) - 4.0
    mask = torch.ones(6, 40, dtype=torch.bool)
    mask[0, 25:] = False
    x[0, 25:] = 0.0
    return x, mask


def test_level_adds_one_constant_per_crop_within_the_range_and_keeps_padding():
    x, mask = _crops()
    y = random_level(x, mask, 6.0, torch.Generator().manual_seed(1))
    shift = (y - x)[:, 0, 0]
    assert torch.allclose((y - x)[1:], shift[1:, None, None].expand(5, 40, 40), atol=1e-5)
    assert shift.abs().max() <= 6.0 * math.log(10) / 10 + 1e-6
    assert shift.abs().min() > 0
    assert torch.equal(y[0, 25:], x[0, 25:])


def test_noise_only_adds_power_at_about_the_requested_snr_and_is_seeded():
    x, mask = _crops()
    y = random_noise(x, mask, (10.0, 10.0), 1.0, torch.Generator().manual_seed(2))
    again = random_noise(x, mask, (10.0, 10.0), 1.0, torch.Generator().manual_seed(2))
    assert torch.equal(y, again)
    assert (y[mask] >= x[mask] - 1e-6).all()  # log(exp(x) + noise) >= x
    assert torch.equal(y[0, 25:], x[0, 25:])
    speech = x[1:].exp().mean()
    noise = (y[1:].exp() - x[1:].exp()).mean()
    snr_db = 10 * math.log10(float(speech / noise))
    assert 8.0 < snr_db < 12.0


def test_noise_prob_zero_changes_nothing_and_prob_picks_a_share_of_crops():
    x, mask = _crops()
    assert torch.equal(random_noise(x, mask, (5.0, 20.0), 0.0, torch.Generator().manual_seed(3)), x)
    big = torch.randn(400, 8, 40) - 4
    y = random_noise(big, torch.ones(400, 8, dtype=torch.bool), (5.0, 20.0), 0.5, torch.Generator().manual_seed(3))
    changed = (y != big).flatten(1).any(1).float().mean()
    assert 0.4 < float(changed) < 0.6


def test_spec_augment_still_importable_from_the_speaker_task():

    assert spec_augment is spec_augment
