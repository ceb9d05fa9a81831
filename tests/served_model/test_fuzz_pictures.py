"""Fuzzing the one picture conversion (tests/picture_fuzzing.py): every input, of every accepted
format, ends as the (28, 28) image or the project's one-paragraph PictureError, within
SECONDS and MEMORY_MB (measured in a child process that holds the conversion to them), with
no warning and no other exception; and the served model's contract turns each refusal into
its one-paragraph error naming the picture. The app (tests/e2e/test_app.py), the served model
over HTTP (tests/e2e/test_serving_limits.py) and `predict` (tests/pipelines/predict/) get the
same pictures.

CI (CI set) runs the Hypothesis test derandomized, without its example database, and the
mutation run with a fixed seed: the same inputs every time. `python benchmarks/fuzz_pictures.py
--seed N --seconds S` is the longer run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashion_transfer.served_model.contract import InvalidImagesError, pictures_to_images
from tests.picture_fuzzing import (
    FORMATS,
    GENERATED_MODES,
    MEMORY_MB,
    SECONDS,
    BoundedConverter,
    fuzz,
    generated_picture,
    mutant,
    mutate,
    seed_corpus,
)

CI = bool(os.environ.get("CI"))
FOUND = Path(__file__).parents[1] / "fixtures" / "pictures-found-by-fuzzing"
MUTANTS = 600  # of the fixed-seed mutation run: about 10-20 s on a 2-core machine
# Hypothesis: random examples (and its database in .hypothesis/, git-ignored) on a desk, the
# same ones in CI.
FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,  # the converter holds each picture to SECONDS itself
    derandomize=CI,
    database=None if CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def converter():
    with BoundedConverter() as bounded:
        yield bounded


def assert_ends_well(outcome, what) -> None:
    assert not outcome.fault, f"{what}: {outcome.kind}: {outcome.detail} {outcome.warnings}"
    assert outcome.seconds <= SECONDS, f"{what}: {outcome.seconds:.1f} s"
    assert outcome.peak_mb <= MEMORY_MB, f"{what}: {outcome.peak_mb:.0f} MB"


def test_every_seed_picture_ends_as_its_image_or_its_error(converter):
    """Real pictures of every format and mode give their image; crafted headers announcing
    an impossible size give the error; compression bombs of 49 MP stay within the bounds."""
    for name, data in seed_corpus().items():
        outcome = converter.convert(data)
        assert_ends_well(outcome, name)
        if "/header-" in name:
            assert outcome.kind == "refused", name
        if name.split("/")[1] in ("grey", "rgb", "rgba", "16-bit", "float", "animated"):
            assert outcome.kind == "image", (name, outcome.detail)
    assert {name.split("/")[0] for name in seed_corpus()} == set(FORMATS)


@pytest.mark.parametrize("path", sorted(FOUND.iterdir()), ids=lambda path: path.name)
def test_a_picture_the_fuzzer_found_ends_well(converter, path):
    """Each made a warning or an error escape before it was fixed (README in tests/fixtures)."""
    assert_ends_well(converter.convert(path.read_bytes()), path.name)


@st.composite
def pictures(draw) -> bytes:
    """A seed picture or a generated one (any mode, size, orientation, ICC profile, frames),
    then mutated 0-4 times."""
    corpus = seed_corpus()
    if draw(st.booleans()):
        data = corpus[draw(st.sampled_from(sorted(corpus)))]
    else:
        data = generated_picture(
            fmt=draw(st.sampled_from(FORMATS)),
            mode=draw(st.sampled_from(GENERATED_MODES)),
            width=draw(st.integers(1, 300)),
            height=draw(st.integers(1, 300)),
            pixels_seed=draw(st.integers(0, 2**32 - 1)),
            orientation=draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 65535])),
            icc=draw(st.booleans()),
            frames=draw(st.integers(1, 3)),
        )
    steps = draw(st.integers(0, 4))
    return mutate(data, draw(st.randoms(use_true_random=False)), corpus, steps)


@FUZZ_SETTINGS
@given(picture=pictures())
def test_any_picture_ends_as_the_image_or_the_picture_error(converter, picture):
    assert_ends_well(converter.convert(picture), f"{len(picture)} bytes")


def test_a_seeded_mutation_run_finds_nothing(converter, tmp_path):
    report = fuzz(seed=0, converter=converter, inputs=MUTANTS, failures_folder=tmp_path)
    assert report.inputs == MUTANTS
    assert not report.failures, report.failures[:3]
    outcomes = {kind for counts in report.by_format.values() for kind in counts}
    assert outcomes == {"image", "refused"}
    assert set(report.by_format) == set(FORMATS)


def test_the_contract_names_each_refused_picture_in_one_paragraph():
    """The served model's contract (and through it the scoring server's 400, the app's 400):
    the error says which picture of the request, why, and what is expected; never another
    exception. In process, on the pictures that decode small."""
    corpus = seed_corpus()
    hostile = [data for name, data in corpus.items() if "49mp" not in name]
    hostile += [path.read_bytes() for path in sorted(FOUND.iterdir())]
    hostile += [mutant(7, index)[1] for index in range(150)]
    hostile = [data for data in hostile if len(data) < 200_000]
    refused = 0
    for data in hostile:
        try:
            images = pictures_to_images([corpus["PNG/grey"], data])
        except InvalidImagesError as error:
            message = str(error)
            assert message.startswith("picture 1: "), message
            assert "Expected 1 to 1000 encoded pictures" in message and "\n" not in message
            refused += 1
        else:
            assert images.shape == (2, 28, 28) and images.dtype == np.float32
            assert 0 <= images.min() and images.max() <= 1
    assert 0 < refused < len(hostile)
