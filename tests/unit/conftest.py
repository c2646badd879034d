from __future__ import annotations

import pytest

from sparse_mm.synth import SynthParams, synthesize


@pytest.fixture(scope="session")
def mini_corpus(tmp_path_factory):
    """A 300-image synthetic corpus in the seed layout (test/val 30 images each)."""
    out = tmp_path_factory.mktemp("mini")
    synthesize(out, SynthParams(seed=3, n_images=300))
    return out
