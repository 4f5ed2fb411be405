"""Config overrides for tiny, fast training runs in the tests (importable: tests/ has no __init__.py)."""

from __future__ import annotations

#: Torch threads of every test (conftest pins it; learning tests pin it in their configs too). One: pytest
#: runs one worker process per core (pytest-xdist, ``-n auto`` in pyproject's addopts), so one thread each
#: fills the machine without oversubscribing it, and every learning test sums in the same order on any
#: machine, whatever its core count.
THREADS = 1

#: A small, fast DCGAN on the digits (16x16, few channels): seconds per hundred steps.
TINY_DIGITS = {
    "data.resolution": 16,
    "model.base_channels": 8,
    "model.latent_dim": 16,
    "train.batch_size": 32,
    "train.log_every": 10,
    "train.sample_every": 20,
    "train.checkpoint_every": 20,
    "train.sample_count": 16,
    "train.progress": False,
    "train.threads": THREADS,
}

#: The tiny runs the test session trains once and shares (conftest's ``tiny_*_run`` fixtures):
#: name -> (preset, overrides). Their tests are about the API, files and commands around a trained
#: generator, not what it learned; tests that need other settings train their own run.
TINY_RUNS = {
    "dcgan": ("dcgan-digits", {**TINY_DIGITS, "train.steps": 20}),
    "cdcgan": ("cdcgan-digits", {**TINY_DIGITS, "train.steps": 20}),
    "ring8": ("gan-ring8", {"train.steps": 10, "train.progress": False, "model.hidden_dim": 32}),  # evaluates at step 10
    # a conditional SpecGAN on conftest's tone_folder (3 classes of 8 kHz tones, 2,048 samples): audio plumbing
    "cspecgan": ("cspecgan-fsdd", {
        "data.name": "audio-folder", "data.root": "{tone_folder}", "data.sample_rate": 8000, "data.length": 2048,
        "model.base_channels": 4, "model.latent_dim": 16, "model.griffin_lim_iters": 8, "train.batch_size": 24,
        "train.steps": 20, "train.log_every": 10, "train.sample_every": 10, "train.checkpoint_every": 20,
        "train.sample_count": 6, "train.progress": False, "train.threads": THREADS, "eval.every": 0,
        "eval.metrics": ["is", "fid", "kid"],  # the tones are no digits: no label accuracy
    }),
    # a CTGAN on conftest's table_csv (200 rows of 6 mixed columns): table plumbing
    "ctgan": ("ctgan-breast-cancer", {
        "data.name": "table", "data.root": "{table_csv}", "model.hidden_dim": 32, "model.d_hidden_dim": 32,
        "train.batch_size": 50, "train.steps": 20, "train.log_every": 10, "train.sample_every": 10,
        "train.checkpoint_every": 10, "train.progress": False, "train.threads": THREADS,
    }),
    # a conditional MoCoGAN on moving digits at 16x16, 8 frames: video plumbing
    "cmocogan": ("cmocogan-moving-digits", {
        "data.resolution": 16, "data.frames": 8, "model.base_channels": 8, "model.content_dim": 8, "model.motion_dim": 4,
        "model.noise_dim": 4, "train.batch_size": 16, "train.steps": 20, "train.log_every": 10, "train.sample_every": 10,
        "train.checkpoint_every": 20, "train.sample_count": 6, "train.progress": False, "train.threads": THREADS, "eval.every": 0,
    }),
}
